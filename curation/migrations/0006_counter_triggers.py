"""Triggers that keep curation_examplecounter equal to the examples' counts, on PostgreSQL and SQLite.

PostgreSQL: statement-level triggers with transition tables, so a 100,000-row import costs one aggregate. An update
adds the new rows' counts and takes away the old rows' (hash aggregates, no join), and writes only the counts that
changed (taking or releasing a review lock writes nothing). Old and new rows go in one statement, ordered, so that
two transactions never lock counter rows in opposite orders.
SQLite (the laptop default): row-level triggers.
"""

from django.db import migrations

PG_FORMAT = "CASE WHEN {t}.format_ok IS NULL THEN 0 WHEN {t}.format_ok THEN 1 ELSE 2 END"
PG_EDGE = "{t}.tags @> '[\"edge_case\"]'::jsonb"
PG_DIMS = "{t}.project_id, {t}.status, {t}.label, " + PG_FORMAT + ", " + PG_EDGE

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION curation_examplecounter_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 8;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT {PG_DIMS.format(t="r")}, shard_of.s, count(*) FROM new_rows r, (SELECT my_shard AS s) shard_of
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (project_id, shard, status, label, format_state, edge_case) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT {PG_DIMS.format(t="r")}, shard_of.s, -count(*) FROM old_rows r, (SELECT my_shard AS s) shard_of
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (project_id, shard, status, label, format_state, edge_case) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT d.project_id, d.status, d.label, d.format_state, d.edge_case, my_shard, sum(d.delta)
        FROM (
            SELECT {PG_DIMS.format(t="o")}, -1 AS delta FROM old_rows o
            UNION ALL
            SELECT {PG_DIMS.format(t="n")}, 1 FROM new_rows n
        ) AS d (project_id, status, label, format_state, edge_case, delta)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.delta) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (project_id, shard, status, label, format_state, edge_case) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$;
"""
PG_FORWARD = [
    PG_FUNCTION,
    "CREATE TRIGGER curation_examplecounter_insert AFTER INSERT ON curation_example REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
    "CREATE TRIGGER curation_examplecounter_update AFTER UPDATE ON curation_example REFERENCING OLD TABLE AS old_rows"
    " NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
    "CREATE TRIGGER curation_examplecounter_delete AFTER DELETE ON curation_example REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
    "INSERT INTO curation_examplecounter (project_id, status, label, format_state, edge_case, shard, n)"
    f" SELECT {PG_DIMS.format(t='e')}, 0, count(*) FROM curation_example e GROUP BY 1, 2, 3, 4, 5",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS curation_examplecounter_insert ON curation_example",
    "DROP TRIGGER IF EXISTS curation_examplecounter_update ON curation_example",
    "DROP TRIGGER IF EXISTS curation_examplecounter_delete ON curation_example",
    "DROP FUNCTION IF EXISTS curation_examplecounter_apply()",
]

SQLITE_FORMAT = "CASE WHEN {t}.format_ok IS NULL THEN 0 WHEN {t}.format_ok THEN 1 ELSE 2 END"
SQLITE_EDGE = "EXISTS (SELECT 1 FROM json_each({t}.tags) WHERE value = 'edge_case')"
SQLITE_UPSERT = (
    "INSERT INTO curation_examplecounter (project_id, shard, status, label, format_state, edge_case, n)"
    " VALUES ({t}.project_id, 0, {t}.status, {t}.label, " + SQLITE_FORMAT + ", " + SQLITE_EDGE + ", {delta})"
    " ON CONFLICT (project_id, shard, status, label, format_state, edge_case) DO UPDATE SET n = n + {delta};"
)
SQLITE_CHANGED = (
    "OLD.status IS NOT NEW.status OR OLD.label IS NOT NEW.label OR OLD.format_ok IS NOT NEW.format_ok"
    " OR OLD.tags IS NOT NEW.tags"
)
SQLITE_FORWARD = [
    "CREATE TRIGGER curation_examplecounter_insert AFTER INSERT ON curation_example BEGIN "
    + SQLITE_UPSERT.format(t="NEW", delta=1)
    + " END",
    f"CREATE TRIGGER curation_examplecounter_update AFTER UPDATE ON curation_example WHEN {SQLITE_CHANGED} BEGIN "
    + SQLITE_UPSERT.format(t="OLD", delta=-1)
    + " "
    + SQLITE_UPSERT.format(t="NEW", delta=1)
    + " END",
    "CREATE TRIGGER curation_examplecounter_delete AFTER DELETE ON curation_example BEGIN "
    + SQLITE_UPSERT.format(t="OLD", delta=-1)
    + " END",
    "INSERT INTO curation_examplecounter (project_id, shard, status, label, format_state, edge_case, n)"
    f" SELECT e.project_id, 0, e.status, e.label, {SQLITE_FORMAT.format(t='e')}, {SQLITE_EDGE.format(t='e')},"
    " count(*) FROM curation_example e GROUP BY 1, 2, 3, 4, 5, 6",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS curation_examplecounter_insert",
    "DROP TRIGGER IF EXISTS curation_examplecounter_update",
    "DROP TRIGGER IF EXISTS curation_examplecounter_delete",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG_FORWARD if vendor == "postgresql" else SQLITE_FORWARD if vendor == "sqlite" else []:
        schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in PG_BACKWARD if vendor == "postgresql" else SQLITE_BACKWARD if vendor == "sqlite" else []:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("curation", "0005_example_counters")]
    operations = [migrations.RunPython(forward, backward)]
