"""A frozen dataset version cannot change: the database refuses any UPDATE of its items."""

from django.db import migrations

PG = [
    """CREATE OR REPLACE FUNCTION curation_version_item_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.example_id IS NULL AND OLD.example_id IS NOT NULL
           AND (NEW.version_id, NEW.split, NEW.content_hash, NEW.messages, NEW.label)
               IS NOT DISTINCT FROM (OLD.version_id, OLD.split, OLD.content_hash, OLD.messages, OLD.label) THEN
            RETURN NEW;  -- the example was deleted (ON DELETE SET NULL): the frozen content stays as it was
        END IF;
        RAISE EXCEPTION 'dataset version items are immutable (version %)', OLD.version_id;
    END $$""",
    "CREATE TRIGGER curation_version_item_immutable BEFORE UPDATE ON curation_datasetversionitem"
    " FOR EACH ROW EXECUTE FUNCTION curation_version_item_immutable()",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS curation_version_item_immutable ON curation_datasetversionitem",
    "DROP FUNCTION IF EXISTS curation_version_item_immutable()",
]
SQLITE = [
    "CREATE TRIGGER curation_version_item_immutable BEFORE UPDATE ON curation_datasetversionitem"
    " WHEN NOT (NEW.example_id IS NULL AND NEW.version_id IS OLD.version_id AND NEW.split IS OLD.split"
    " AND NEW.content_hash IS OLD.content_hash AND NEW.messages IS OLD.messages AND NEW.label IS OLD.label)"
    " BEGIN SELECT RAISE(ABORT, 'dataset version items are immutable'); END",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS curation_version_item_immutable"]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG if vendor == "postgresql" else SQLITE if vendor == "sqlite" else []:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG_BACKWARD if vendor == "postgresql" else SQLITE_BACKWARD if vendor == "sqlite" else []:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("curation", "0008_updated_index")]
    operations = [migrations.RunPython(forward, backward)]
