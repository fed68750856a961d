"""PostgreSQL only: a GIN index for tag filters, word search that never slows an import down, room for HOT updates.

Computing a tsvector costs more than everything else an imported row costs, so imports leave `search_vector`
NULL and a background task fills it in (curation.tasks.example_search_index). Until it has, a search also scans
the few rows not yet indexed (the partial index finds them).
"""

from django.db import migrations

FORWARD = [
    # Room on each page for HOT updates: review locks change several times per review and touch no index.
    "ALTER TABLE curation_example SET (fillfactor = 85)",
    "CREATE INDEX IF NOT EXISTS example_tags_gin ON curation_example USING gin (tags jsonb_path_ops)",
    "ALTER TABLE curation_example ADD COLUMN IF NOT EXISTS search_vector tsvector",
    "CREATE INDEX IF NOT EXISTS example_search_gin ON curation_example USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS example_search_pending ON curation_example (project_id, id)"
    " WHERE search_vector IS NULL",
]
BACKWARD = [
    "ALTER TABLE curation_example RESET (fillfactor)",
    "DROP INDEX IF EXISTS example_search_pending",
    "DROP INDEX IF EXISTS example_search_gin",
    "ALTER TABLE curation_example DROP COLUMN IF EXISTS search_vector",
    "DROP INDEX IF EXISTS example_tags_gin",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("curation", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
