"""Polish product texts are searched with the knowledge base's ``polish_unaccent`` configuration
(``unaccent`` dictionary, then ``simple``; created by ``knowledge/0002``) instead of ``simple``,
so ``sluchawki`` finds ``słuchawki`` without the typo vocabulary's help: the catalog and the
knowledge base search alike. ``unaccent()`` itself is not immutable and never appears in an index
expression; the configuration is a constant of ``to_tsvector(regconfig, text)``, which is.

PostgreSQL 15 cannot change a generated column's expression, so the column is dropped and added
again (its three partial GIN indexes with it), and the Polish names' index is rebuilt. The
expression is frozen here (catalog.search.generated_column_sql() returns the same, tested).
Nothing on SQLite.
"""

from django.db import migrations


def _vector(configs: dict[str, str]) -> str:
    def one(config: str) -> str:
        return (f"(setweight(to_tsvector('{config}'::regconfig, coalesce(name, '')), 'A') || "
                f"setweight(to_tsvector('{config}'::regconfig, coalesce(description, '')), 'B'))")

    cases = " ".join(f"WHEN '{language}' THEN {one(config)}" for language, config in configs.items())
    return f"CASE language {cases} ELSE {one('simple')} END"


VECTOR = _vector({"en": "english", "ru": "russian", "pl": "polish_unaccent"})
OLD_VECTOR = _vector({"en": "english", "ru": "russian", "pl": "simple"})


def _statements(vector: str, polish: str) -> list[str]:
    return [
        "ALTER TABLE catalog_producttext DROP COLUMN search_vector",
        f"ALTER TABLE catalog_producttext ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector}) STORED",
        *[
            f"CREATE INDEX catalog_text_fts_{language} ON catalog_producttext USING gin (search_vector) "
            f"WHERE language = '{language}'"
            for language in ("en", "ru", "pl")
        ],
        "DROP INDEX IF EXISTS catalog_text_name_fts_pl",
        f"CREATE INDEX catalog_text_name_fts_pl ON catalog_producttext USING gin (to_tsvector('{polish}'::regconfig, name)) "
        "WHERE language = 'pl'",
        "ANALYZE catalog_producttext",
    ]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in _statements(VECTOR, "polish_unaccent"):
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in _statements(OLD_VECTOR, "simple"):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_catalog_sku_trigram_knn"),
        ("knowledge", "0002_knowledge_search_postgres"),  # creates the polish_unaccent configuration
    ]

    operations = [migrations.RunPython(forward, backward)]
