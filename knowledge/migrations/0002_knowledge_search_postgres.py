"""Search infrastructure on PostgreSQL only (SQLite, the embedded mode, searches without it).

- pg_trgm for typo tolerance, unaccent for Polish;
- `polish_unaccent`: PostgreSQL has no Polish stemmer, so Polish words are lowercased and their
  diacritics removed (the `unaccent` dictionary, then `simple`);
- GIN indexes on the stored tsvectors (whole translation, title alone) and on titles' trigrams.

Creating extensions needs a role allowed to (the database owner on PostgreSQL 13+ for these two
trusted extensions, or a superuser).
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'polish_unaccent') THEN
            CREATE TEXT SEARCH CONFIGURATION polish_unaccent (COPY = simple);
            ALTER TEXT SEARCH CONFIGURATION polish_unaccent
                ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
                WITH unaccent, simple;
        END IF;
    END $$""",
    "CREATE INDEX IF NOT EXISTS kb_translation_search_gin ON knowledge_translation USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS kb_translation_title_gin ON knowledge_translation USING gin (title_vector)",
    "CREATE INDEX IF NOT EXISTS kb_translation_title_trgm ON knowledge_translation USING gin (search_title gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS kb_translation_title_trgm",
    "DROP INDEX IF EXISTS kb_translation_title_gin",
    "DROP INDEX IF EXISTS kb_translation_search_gin",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS polish_unaccent",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARD:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARD:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_knowledge_base")]
    operations = [migrations.RunPython(forward, backward)]
