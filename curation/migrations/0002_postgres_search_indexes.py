"""GIN indexes that keep tag filters and word search fast at a million examples (PostgreSQL only)."""

from django.db import migrations

INDEXES = [
    (
        "example_tags_gin",
        "CREATE INDEX IF NOT EXISTS example_tags_gin ON curation_example USING gin (tags jsonb_path_ops)",
    ),
    (
        "example_messages_fts",
        "CREATE INDEX IF NOT EXISTS example_messages_fts ON curation_example"
        " USING gin (jsonb_to_tsvector('simple', messages, '[\"string\"]'))",
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _, sql in INDEXES:
            schema_editor.execute(sql)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, _ in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("curation", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
