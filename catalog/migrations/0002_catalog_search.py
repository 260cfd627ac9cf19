"""PostgreSQL search indexes for the catalog (catalog/search.py queries these exact expressions).

Partial GIN indexes per language with its text-search configuration, and pg_trgm indexes on
names and SKUs. On SQLite (the embedded mode) this migration does nothing.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from catalog.search import FTS_CONFIGS, fts_vector_sql


def _indexes():
    statements = [
        (
            f"CREATE INDEX IF NOT EXISTS catalog_text_fts_{language} ON catalog_producttext "
            f"USING gin ({fts_vector_sql(config)}) WHERE language = '{language}'",
            f"DROP INDEX IF EXISTS catalog_text_fts_{language}",
        )
        for language, config in FTS_CONFIGS.items()
    ]
    statements.append((
        "CREATE INDEX IF NOT EXISTS catalog_text_name_trgm ON catalog_producttext USING gin (name gin_trgm_ops)",
        "DROP INDEX IF EXISTS catalog_text_name_trgm",
    ))
    statements.append((
        "CREATE INDEX IF NOT EXISTS catalog_product_sku_trgm ON catalog_product USING gin (sku gin_trgm_ops)",
        "DROP INDEX IF EXISTS catalog_product_sku_trgm",
    ))
    statements.append((
        "CREATE INDEX IF NOT EXISTS catalog_product_sku_upper ON catalog_product (upper(sku))",
        "DROP INDEX IF EXISTS catalog_product_sku_upper",
    ))
    return statements


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for forward, _backward in _indexes():
            schema_editor.execute(forward)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _forward, backward in _indexes():
            schema_editor.execute(backward)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_catalog_models")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create, drop),
    ]
