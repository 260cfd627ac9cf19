"""Search data moves out of the wide translations table into ``knowledge_searchentry``.

A common word matched thousands of translations, and finding them read one page of
``knowledge_translation`` (bodies, HTML and text beside the vectors, 400 MB at 60,000 rows) per
match. The new table holds only what search reads: language, article, folded title, and the two
vectors. On PostgreSQL the whole vector is stored out of line (``toast_tuple_target`` 128 and
``STORAGE EXTERNAL``: uncompressed, so ranking reads it without decompressing), which leaves about
150 bytes per row in the table the GIN indexes point into. Existing vectors are copied over; the
old columns and their indexes are dropped. SQLite gets the table and never uses it.
"""

import django.db.models.deletion
from django.db import migrations, models

import knowledge.fields

FORWARD = [
    "ALTER TABLE knowledge_searchentry SET (toast_tuple_target = 128)",
    "ALTER TABLE knowledge_searchentry ALTER COLUMN search_vector SET STORAGE EXTERNAL",
    # The title columns stay in the row (compressed if need be): every candidate check reads them.
    "ALTER TABLE knowledge_searchentry ALTER COLUMN title_vector SET STORAGE MAIN",
    "ALTER TABLE knowledge_searchentry ALTER COLUMN search_title SET STORAGE MAIN",
    """INSERT INTO knowledge_searchentry (translation_id, article_id, language, search_title, title_vector, search_vector)
       SELECT id, article_id, language, search_title, title_vector, search_vector FROM knowledge_translation
       WHERE search_vector IS NOT NULL""",
    "CREATE INDEX kb_searchentry_search_gin ON knowledge_searchentry USING gin (search_vector)",
    "CREATE INDEX kb_searchentry_title_gin ON knowledge_searchentry USING gin (title_vector)",
    "CREATE INDEX kb_searchentry_title_trgm ON knowledge_searchentry USING gin (search_title gin_trgm_ops)",
    "DROP INDEX IF EXISTS kb_translation_title_trgm",
    "ANALYZE knowledge_searchentry",
]
BACKWARD = [
    """UPDATE knowledge_translation t SET title_vector = e.title_vector, search_vector = e.search_vector
       FROM knowledge_searchentry e WHERE e.translation_id = t.id""",
    "CREATE INDEX IF NOT EXISTS kb_translation_search_gin ON knowledge_translation USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS kb_translation_title_gin ON knowledge_translation USING gin (title_vector)",
    "CREATE INDEX IF NOT EXISTS kb_translation_title_trgm ON knowledge_translation USING gin (search_title gin_trgm_ops)",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0002_knowledge_search_postgres"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchEntry",
            fields=[
                ("translation", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                     related_name="search_entry", serialize=False,
                                                     to="knowledge.translation")),
                ("language", models.CharField(max_length=8)),
                ("search_title", models.CharField(blank=True, max_length=300)),
                ("title_vector", knowledge.fields.SearchVectorField(null=True)),
                ("search_vector", knowledge.fields.SearchVectorField(null=True)),
                ("article", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                              related_name="+", to="knowledge.article")),
            ],
            options={
                "indexes": [models.Index(fields=["article"], name="kb_searchentry_article")],
            },
        ),
        migrations.RunPython(forward, backward),
        migrations.RemoveField(model_name="translation", name="search_vector"),
        migrations.RemoveField(model_name="translation", name="title_vector"),
    ]
