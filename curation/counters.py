"""The database triggers that keep curation_examplecounter equal to the examples' counts, on PostgreSQL and SQLite.

They are installed by migration 0006 and checked again after every `migrate` (the post_migrate handler in apps.py):
SQLite rebuilds a table to alter it and drops its triggers with it (migration 0012 did, and every later change to
curation_example would), so a migration can never leave the counters unmaintained. Whenever the triggers had to be
(re)installed, the counters are rebuilt from the examples; `manage.py rebuild_counters` does the same on demand.

PostgreSQL: statement-level triggers with transition tables, so a 100,000-row import costs one aggregate. An update
adds the new rows' counts and takes away the old rows' (hash aggregates, no join), and writes only the counts that
changed (taking or releasing a review lock writes nothing). Old and new rows go in one statement, ordered, so that
two transactions never lock counter rows in opposite orders.
SQLite (the laptop default): row-level triggers.
"""

from collections import Counter

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TRIGGERS = ("curation_examplecounter_insert", "curation_examplecounter_update", "curation_examplecounter_delete")
COLUMNS = "project_id, shard, status, label, format_state, edge_case, n"
KEY = "(project_id, shard, status, label, format_state, edge_case)"

PG_FORMAT = "CASE WHEN {t}.format_ok IS NULL THEN 0 WHEN {t}.format_ok THEN 1 ELSE 2 END"
PG_EDGE = "{t}.tags @> '[\"edge_case\"]'::jsonb"
PG_DIMS = "{t}.project_id, {t}.status, {t}.label, " + PG_FORMAT + ", " + PG_EDGE
PG_UPSERT = f"ON CONFLICT {KEY} DO UPDATE SET n = c.n + EXCLUDED.n"

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION curation_examplecounter_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := pg_backend_pid() % 8;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT {PG_DIMS.format(t="r")}, shard_of.s, count(*) FROM new_rows r, (SELECT my_shard AS s) shard_of
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        {PG_UPSERT};
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT {PG_DIMS.format(t="r")}, shard_of.s, -count(*) FROM old_rows r, (SELECT my_shard AS s) shard_of
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        {PG_UPSERT};
    ELSE
        INSERT INTO curation_examplecounter AS c (project_id, status, label, format_state, edge_case, shard, n)
        SELECT d.project_id, d.status, d.label, d.format_state, d.edge_case, my_shard, sum(d.delta)
        FROM (
            SELECT {PG_DIMS.format(t="o")}, -1 AS delta FROM old_rows o
            UNION ALL
            SELECT {PG_DIMS.format(t="n")}, 1 FROM new_rows n
        ) AS d (project_id, status, label, format_state, edge_case, delta)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.delta) <> 0 ORDER BY 1, 2, 3, 4, 5
        {PG_UPSERT};
    END IF;
    RETURN NULL;
END $$;
"""
PG_INSTALL = [
    PG_FUNCTION,
    *(f"DROP TRIGGER IF EXISTS {name} ON curation_example" for name in TRIGGERS),
    "CREATE TRIGGER curation_examplecounter_insert AFTER INSERT ON curation_example REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
    "CREATE TRIGGER curation_examplecounter_update AFTER UPDATE ON curation_example REFERENCING OLD TABLE AS old_rows"
    " NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
    "CREATE TRIGGER curation_examplecounter_delete AFTER DELETE ON curation_example REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION curation_examplecounter_apply()",
]
PG_UNINSTALL = [
    *(f"DROP TRIGGER IF EXISTS {name} ON curation_example" for name in TRIGGERS),
    "DROP FUNCTION IF EXISTS curation_examplecounter_apply()",
]
PG_INSTALLED = (
    "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'curation_example'::regclass AND NOT tgisinternal"
    " AND tgname = ANY(%s)"
)

SQLITE_FORMAT = PG_FORMAT
SQLITE_EDGE = "EXISTS (SELECT 1 FROM json_each({t}.tags) WHERE value = 'edge_case')"
SQLITE_UPSERT = (
    f"INSERT INTO curation_examplecounter ({COLUMNS})"
    " VALUES ({t}.project_id, 0, {t}.status, {t}.label, " + SQLITE_FORMAT + ", " + SQLITE_EDGE + ", {delta})"
    f" ON CONFLICT {KEY} DO UPDATE SET n = n + {{delta}};"
)
SQLITE_CHANGED = (
    "OLD.status IS NOT NEW.status OR OLD.label IS NOT NEW.label OR OLD.format_ok IS NOT NEW.format_ok"
    " OR OLD.tags IS NOT NEW.tags"
)
SQLITE_INSTALL = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
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
]
SQLITE_UNINSTALL = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]
SQLITE_INSTALLED = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'curation_example'"
    " AND name IN (%s, %s, %s)"
)

# One GROUP BY over the examples, in the counters' own terms: what the triggers must always agree with.
FRESH = {
    "postgresql": f"SELECT {PG_DIMS.format(t='e')}, {{shard}}count(*) FROM curation_example e {{where}}"
    " GROUP BY 1, 2, 3, 4, 5",
    "sqlite": f"SELECT e.project_id, e.status, e.label, {SQLITE_FORMAT.format(t='e')}, {SQLITE_EDGE.format(t='e')},"
    " {shard}count(*) FROM curation_example e {where} GROUP BY 1, 2, 3, 4, 5",
}


def _supported(connection: BaseDatabaseWrapper) -> bool:
    return connection.vendor in FRESH


def installed(connection: BaseDatabaseWrapper) -> bool:
    """Whether all three triggers are on the examples table."""
    if not _supported(connection):
        return True
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_INSTALLED, [list(TRIGGERS)])
        else:
            cursor.execute(SQLITE_INSTALLED, list(TRIGGERS))
        return cursor.fetchone()[0] == len(TRIGGERS)


def install(connection: BaseDatabaseWrapper) -> None:
    """(Re)create the triggers; idempotent."""
    if not _supported(connection):
        return
    with connection.cursor() as cursor:
        for sql in PG_INSTALL if connection.vendor == "postgresql" else SQLITE_INSTALL:
            cursor.execute(sql)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    if not _supported(connection):
        return
    with connection.cursor() as cursor:
        for sql in PG_UNINSTALL if connection.vendor == "postgresql" else SQLITE_UNINSTALL:
            cursor.execute(sql)


def fresh_counts(connection: BaseDatabaseWrapper, project_id: int | None = None) -> Counter:
    """The examples counted now by (project, status, label, format state, edge case): the truth the counters keep."""
    where, params = ("WHERE e.project_id = %s", [project_id]) if project_id is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(FRESH[connection.vendor].format(where=where, shard=""), params)
        return Counter({(p, s, label, f, bool(edge)): n for p, s, label, f, edge, n in cursor.fetchall()})


def maintained_counts(connection: BaseDatabaseWrapper, project_id: int | None = None) -> Counter:
    """What the counters say, summed over shards, zero rows left out."""
    where, params = ("WHERE project_id = %s", [project_id]) if project_id is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT project_id, status, label, format_state, edge_case, sum(n) FROM curation_examplecounter"
            f" {where} GROUP BY 1, 2, 3, 4, 5",
            params,
        )
        return Counter({(p, s, label, f, bool(edge)): int(n) for p, s, label, f, edge, n in cursor.fetchall() if n})


def rebuild(connection: BaseDatabaseWrapper, project_id: int | None = None) -> int:
    """Replace the counters (of one project, or all) with a fresh count; writers wait meanwhile. Returns the rows."""
    if not _supported(connection):
        return 0
    where, params = ("WHERE e.project_id = %s", [project_id]) if project_id is not None else ("", [])
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Blocks inserts, updates and deletes of examples (not reads) until the new counts are in.
            cursor.execute("LOCK TABLE curation_example IN SHARE MODE")
        cursor.execute(
            "DELETE FROM curation_examplecounter" + (" WHERE project_id = %s" if project_id is not None else ""),
            params,
        )
        cursor.execute(
            "INSERT INTO curation_examplecounter (project_id, status, label, format_state, edge_case, shard, n) "
            + FRESH[connection.vendor].format(where=where, shard="0, "),
            params,
        )
        return cursor.rowcount


def ensure(connection: BaseDatabaseWrapper) -> bool:
    """After a migration: put back missing triggers and, if any were missing, recount. True when it had to."""
    if not _supported(connection) or "curation_example" not in connection.introspection.table_names():
        return False
    if installed(connection):
        return False
    with transaction.atomic(using=connection.alias):
        install(connection)
        rebuild(connection)
    return True
