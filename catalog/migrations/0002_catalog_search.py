"""PostgreSQL search for the catalog (catalog/search.py queries these exact names).

A stored generated tsvector column on catalog_producttext in the text-search configuration of
each row's language (english, russian, simple for Polish), one partial GIN index per language,
and pg_trgm indexes on SKUs and on the search vocabulary. Django's model does not know the
column: PostgreSQL computes it on every insert and update. On SQLite this migration does nothing.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# Frozen copy of catalog.search.generated_column_sql() at the time of this migration.
VECTOR = (
    "CASE language "
    "WHEN 'en' THEN (setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')) "
    "WHEN 'ru' THEN (setweight(to_tsvector('russian'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('russian'::regconfig, coalesce(description, '')), 'B')) "
    "WHEN 'pl' THEN (setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'B')) "
    "ELSE (setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'B')) END"
)

FORWARD = [
    f"ALTER TABLE catalog_producttext ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({VECTOR}) STORED",
    *[
        f"CREATE INDEX catalog_text_fts_{language} ON catalog_producttext USING gin (search_vector) WHERE language = '{language}'"
        for language in ("en", "ru", "pl")
    ],
    "CREATE INDEX catalog_product_sku_trgm ON catalog_product USING gin (sku gin_trgm_ops)",
    "CREATE INDEX catalog_product_sku_upper ON catalog_product (upper(sku))",
    # GiST: the closest word is found by index order (word <-> query), with no threshold scan.
    "CREATE INDEX catalog_searchword_trgm ON catalog_searchword USING gist (word gist_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS catalog_searchword_trgm",
    "DROP INDEX IF EXISTS catalog_product_sku_upper",
    "DROP INDEX IF EXISTS catalog_product_sku_trgm",
    *[f"DROP INDEX IF EXISTS catalog_text_fts_{language}" for language in ("en", "ru", "pl")],
    "ALTER TABLE catalog_producttext DROP COLUMN IF EXISTS search_vector",
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
    dependencies = [("catalog", "0001_catalog_models")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create, drop),
    ]
