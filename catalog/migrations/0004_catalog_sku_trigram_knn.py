"""A GiST trigram index on SKUs, so a mistyped SKU finds its closest SKUs by index order.

The search's SKU branch took the first 50 SKUs similar enough to the query (``sku % q LIMIT 50``);
PostgreSQL ran that as a sequential scan (the GIN index cannot stop early), reading ~19,000 of
50,000 products for one mistyped SKU, the slowest quarter of the catalog benchmark. Ordered by
``sku <-> q`` over this index it reads only the nearest ones, and they are the 50 most similar
rather than the first 50 found. PostgreSQL only; nothing on SQLite.
"""

from django.db import migrations

FORWARD = ["CREATE INDEX IF NOT EXISTS catalog_product_sku_trgm_gist ON catalog_product USING gist (sku gist_trgm_ops)"]
BACKWARD = ["DROP INDEX IF EXISTS catalog_product_sku_trgm_gist"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_catalog_search_names")]

    operations = [migrations.RunPython(create, drop)]
