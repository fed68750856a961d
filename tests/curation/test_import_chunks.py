"""An import written in many chunks (PostgreSQL writes a chunk while it parses the next) behaves as one write: file
order, duplicates across chunks, atomic and partial modes, exact counters. Small chunks here; the same on SQLite."""

import io

import pytest
from django.db import DatabaseError, connection

from curation import counters, formats, services
from curation.models import Example
from curation.services import imports

from ..helpers import chat, jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(imports, "_CHUNK_ROWS", 3)


def run_import(project, lead, body: bytes, mode: str = "atomic", max_body_bytes: int = 10**9):
    records = formats.read_jsonl(
        io.BytesIO(body),
        fmt="auto",
        labels=project.labels,
        limits=services.import_limits(),
        max_body_bytes=max_body_bytes,
    )
    return services.import_examples(project=project, user=lead, records=records, mode=mode)


def assert_counters_exact(project):
    assert counters.maintained_counts(connection, project.pk) == counters.fresh_counts(connection, project.pk)


def users(project) -> list[str]:
    return [e.messages[1]["content"] for e in Example.objects.filter(project=project).order_by("id")]


def test_many_chunks_keep_the_file_order_and_skip_duplicates_across_them(project, lead):
    run_import(project, lead, jsonl([chat("q4", label="P2"), chat("q9")]))
    rows = [chat(f"q{i}", label=f"P{i % 4 + 1}", tags=["edge_case"] if i % 5 == 0 else []) for i in range(14)]
    rows += [chat("q1", label="P2"), chat("q12")]  # duplicates of lines 2 and 13, in later chunks
    job = run_import(project, lead, jsonl(rows))
    assert (job.status, job.total_lines, job.created_count, job.duplicate_count) == ("succeeded", 16, 12, 4)
    assert users(project) == ["q4", "q9"] + [f"q{i}" for i in range(14) if i not in (4, 9)]
    assert_counters_exact(project)


def test_partial_mode_keeps_the_valid_lines_of_every_chunk(project, lead):
    rows = [chat(f"q{i}") if i % 4 else b"{broken" for i in range(1, 15)]
    rows.append(chat("q1"))  # a duplicate after the errors
    job = run_import(project, lead, jsonl(rows), mode="partial")
    assert (job.status, job.created_count, job.duplicate_count, job.rejected_count) == ("partial", 11, 1, 3)
    assert [error["line"] for error in job.errors] == [4, 8, 12]
    assert users(project) == [f"q{i}" for i in range(1, 15) if i % 4]
    assert_counters_exact(project)


def test_an_error_after_chunks_were_written_leaves_nothing_in_atomic_mode(project, lead):
    run_import(project, lead, jsonl([chat("kept")]))
    rows = [chat(f"q{i}") for i in range(10)] + [{"messages": []}] + [chat("after")]
    job = run_import(project, lead, jsonl(rows))
    assert (job.status, job.created_count, job.rejected_count) == ("failed", 0, 1)
    assert job.errors[0]["line"] == 11
    assert users(project) == ["kept"]
    assert_counters_exact(project)


def test_a_body_too_large_after_chunks_were_written_leaves_nothing(project, lead):
    body = jsonl([chat(f"q{i}") for i in range(12)])
    with pytest.raises(formats.BodyTooLarge):
        run_import(project, lead, body, mode="partial", max_body_bytes=len(body) - 10)
    assert Example.objects.filter(project=project).count() == 0
    assert_counters_exact(project)


@pytest.mark.postgresql
def test_a_database_error_while_a_chunk_is_written_is_raised_and_nothing_is_kept(project, lead, monkeypatch):
    # A status the check constraint refuses: the chunk writer's INSERT fails in its own thread.
    monkeypatch.setattr(imports, "ReviewStatus", type("Bogus", (), {"PENDING": "bogus"}))
    with pytest.raises(DatabaseError):
        run_import(project, lead, jsonl([chat(f"q{i}") for i in range(12)]), mode="partial")
    assert Example.objects.filter(project=project).count() == 0


@pytest.mark.postgresql
def test_the_foreign_keys_checked_per_chunk_are_deferred_again_for_the_rest_of_the_transaction(project, lead):
    run_import(project, lead, jsonl([chat(f"q{i}") for i in range(5)]))
    # Deferred (as Django creates them): a row naming a project that does not exist passes until COMMIT.
    orphan = Example.objects.create(project_id=project.pk + 1000, messages=[], content_hash="x")
    orphan.delete()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_import_of_the_same_rows_waits_and_skips_them(project, lead):
    """Another import, not committed yet, writes one of this import's rows: this one's INSERT waits for it on the
    unique index, and once it commits the row counts as a duplicate here: nothing lost, nothing twice, no error."""
    import threading
    import time

    from django.db import connections, transaction

    first_written, commit_first = threading.Event(), threading.Event()
    jobs = {}

    def first():
        try:
            with transaction.atomic():
                jobs["first"] = run_import(project, lead, jsonl([chat("a"), chat("shared"), chat("b")]))
                first_written.set()
                assert commit_first.wait(30)
        finally:
            connections.close_all()

    def second():
        try:
            jobs["second"] = run_import(project, lead, jsonl([chat("c"), chat("shared"), chat("d")]), mode="partial")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_written.wait(30)
    threads[1].start()
    # The second import's INSERT waits on the first's uncommitted row: only then may the first commit.
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO curation_example%%'"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the second import never waited for the first")
    commit_first.set()
    for thread in threads:
        thread.join(60)
    assert (jobs["first"].created_count, jobs["first"].duplicate_count) == (3, 0)
    assert (jobs["second"].status, jobs["second"].created_count, jobs["second"].duplicate_count) == ("succeeded", 2, 1)
    assert users(project) == ["a", "shared", "b", "c", "d"]
    assert_counters_exact(project)
