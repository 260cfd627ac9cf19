"""Catalog search, second step (PostgreSQL only; nothing on SQLite):

- partial GIN indexes on the names alone, per language, so name matches are found in their own
  branch of the search and rank first (catalog.search.name_vector_sql);
- the case-insensitive SKU index becomes ``text_pattern_ops``, so SKU prefixes (``LIKE 'RTR-1%'``)
  use it.
"""

from django.db import migrations

LANGUAGES = (("en", "english"), ("ru", "russian"), ("pl", "simple"))

FORWARD = [
    *[
        f"CREATE INDEX IF NOT EXISTS catalog_text_name_fts_{language} ON catalog_producttext "
        f"USING gin (to_tsvector('{config}'::regconfig, name)) WHERE language = '{language}'"
        for language, config in LANGUAGES
    ],
    "DROP INDEX IF EXISTS catalog_product_sku_upper",
    "CREATE INDEX catalog_product_sku_upper ON catalog_product (upper(sku) text_pattern_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS catalog_product_sku_upper",
    "CREATE INDEX catalog_product_sku_upper ON catalog_product (upper(sku))",
    *[f"DROP INDEX IF EXISTS catalog_text_name_fts_{language}" for language, _config in LANGUAGES],
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_catalog_search")]

    operations = [migrations.RunPython(create, drop)]
