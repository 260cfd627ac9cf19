"""API tokens get scopes. Tokens that exist already keep the full access they had: every scope."""

from django.db import migrations, models

# The scopes as of this migration, spelled out: a later scope must not be granted silently.
ALL_SCOPES = ["kb", "catalog", "customers", "tickets", "channels", "staff"]


def grant_existing_tokens_every_scope(apps, schema_editor):
    apps.get_model("omnicenter", "ApiToken").objects.update(scopes=ALL_SCOPES)


class Migration(migrations.Migration):

    dependencies = [
        ("omnicenter", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(blank=True, default=list, verbose_name="scopes"),
        ),
        # Backwards, the column is simply dropped: without scopes every token had full access again.
        migrations.RunPython(grant_existing_tokens_every_scope, migrations.RunPython.noop),
    ]
