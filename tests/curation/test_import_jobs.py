"""Large imports: a body over FINELINE_IMPORT_SYNC_MAX_BYTES is spooled and answered 202; a worker imports it (here
the service a worker calls, run in the test), the job's detail says how far it got, then gives the same report as a
synchronous import. A smaller body is still imported within its request."""

import io
import signal
import time
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.utils import timezone

from curation import services
from curation.models import Example, ImportJob, QualityScan

from ..helpers import chat, jsonl, post_jsonl, service_env, start_worker, stop_worker

pytestmark = pytest.mark.django_db

THRESHOLD = 300


@pytest.fixture
def spool(settings, tmp_path):
    """Bodies over THRESHOLD bytes are queued; their files go under a data folder of the test's own."""
    settings.VAR_DIR = tmp_path
    settings.FINELINE_IMPORT_SYNC_MAX_BYTES = THRESHOLD
    return tmp_path / "imports"


def rows(count: int, start: int = 0) -> list[dict]:
    return [chat(f"ticket {n}: the export button does nothing", label="P3") for n in range(start, start + count)]


def detail(api, job_id: int) -> dict:
    answer = api.get(f"/api/v1/projects/triage/imports/{job_id}/")
    assert answer.status_code == 200
    return answer.json()


def test_a_large_body_is_queued_then_imported_with_the_same_report(project, lead_api, spool, settings):
    body = jsonl(rows(20)) + b'{"messages": []}\n'
    answer = post_jsonl(lead_api, project.slug, body, "?mode=partial")
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert job["status"] == "queued" and job["size_bytes"] == len(body) and job["mode"] == "partial"
    assert answer["Location"] == job["url"] == f"/api/v1/projects/triage/imports/{job['id']}/"
    assert [p.name for p in spool.iterdir()] == [f"{job['id']}.jsonl"]
    assert Example.objects.count() == 0
    assert detail(lead_api, job["id"])["status"] == "queued"

    services.import_job_run(job_id=job["id"])

    done = detail(lead_api, job["id"])
    assert (done["status"], done["created"], done["rejected"], done["total_lines"]) == ("partial", 20, 1, 21)
    assert done["errors"][0]["line"] == 21 and done["read_bytes"] == done["size_bytes"] == len(body)
    assert done["started_at"] and done["finished_at"] and done["error"] == ""
    assert Example.objects.filter(import_job_id=job["id"]).count() == 20
    assert list(spool.iterdir()) == []  # the spooled body is deleted once imported
    # The same body under the threshold: imported within the request, the same report (every line a duplicate now).
    settings.FINELINE_IMPORT_SYNC_MAX_BYTES = len(body)
    sync = post_jsonl(lead_api, project.slug, body, "?mode=partial")
    assert sync.status_code == 201 and (sync.json()["duplicates"], sync.json()["rejected"]) == (20, 1)


def test_a_body_at_the_threshold_stays_synchronous(project, lead_api, spool, settings):
    body = jsonl(rows(3))
    settings.FINELINE_IMPORT_SYNC_MAX_BYTES = len(body)
    answer = post_jsonl(lead_api, project.slug, body)
    assert answer.status_code == 201 and answer.json()["status"] == "succeeded"
    assert "Location" not in answer and not spool.exists()


def test_a_bad_large_body_in_atomic_mode_fails_with_numbered_lines_and_writes_nothing(project, lead_api, spool):
    body = jsonl([*rows(5), {"messages": "no"}, *rows(5, 5), b"{not json"])
    job = post_jsonl(lead_api, project.slug, body).json()
    services.import_job_run(job_id=job["id"])
    done = detail(lead_api, job["id"])
    assert (done["status"], done["created"], done["rejected"]) == ("failed", 0, 2)
    assert [e["line"] for e in done["errors"]] == [6, 12]
    assert Example.objects.count() == 0 and list(spool.iterdir()) == []


def test_a_large_multipart_file_is_queued_too(project, lead_api, spool):
    table = pa.table({"instruction": [f"question {n}" for n in range(40)], "response": ["SEVERITY: P2"] * 40})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    buffer.name = "dolly.parquet"
    query = '?mapping={"user": "instruction", "assistant": "response"}'
    answer = lead_api.post(f"/api/v1/projects/triage/imports/{query}", {"file": buffer}, format="multipart")
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert (job["format"], job["source"]) == ("parquet", "file:dolly.parquet")
    services.import_job_run(job_id=job["id"])
    done = detail(lead_api, job["id"])
    assert (done["status"], done["created"]) == ("succeeded", 40)


def test_a_large_body_over_the_import_limit_is_413(project, lead_api, spool, settings):
    settings.FINELINE_IMPORT_MAX_BODY_BYTES = 1000
    answer = post_jsonl(lead_api, project.slug, jsonl(rows(30)))
    assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    assert not ImportJob.objects.exists()


def test_the_worker_honours_the_import_limits(project, lead_api, spool, settings):
    job = post_jsonl(lead_api, project.slug, jsonl([*rows(3), chat("x" * 3000)])).json()
    settings.FINELINE_IMPORT_MAX_LINE_BYTES = 1000
    services.import_job_run(job_id=job["id"])
    done = detail(lead_api, job["id"])
    assert done["status"] == "failed" and [(e["line"], e["code"]) for e in done["errors"]] == [(4, "line_too_long")]


def test_a_crashed_import_fails_with_the_reason(project, lead_api, spool):
    job = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()
    (spool / f"{job['id']}.jsonl").unlink()  # what the worker needs is gone
    with pytest.raises(FileNotFoundError):
        services.import_job_run(job_id=job["id"])
    done = detail(lead_api, job["id"])
    assert done["status"] == "failed" and "FileNotFoundError: its spooled body is gone" in done["error"]
    assert done["finished_at"] and Example.objects.count() == 0


def test_an_import_whose_worker_died_starts_once_more_then_fails(project, lead_api, spool):
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    expired = timezone.now() - timedelta(seconds=1)
    # A worker took it and died (its lease ran out): nothing of it was written, it starts over.
    ImportJob.objects.filter(pk=job_id).update(status="running", lease_owner="dead:1", lease_until=expired, attempts=1)
    assert services.import_jobs_recover() == 1
    assert ImportJob.objects.get(pk=job_id).status == "queued"
    # Its second worker died too: it fails, saying why, and its file goes.
    ImportJob.objects.filter(pk=job_id).update(status="running", lease_owner="dead:2", lease_until=expired, attempts=2)
    assert services.import_jobs_recover() == 0
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "failed" and "its worker was lost" in job.error
    assert list(spool.iterdir()) == []


def test_a_queued_import_no_worker_took_in_time_is_sent_again(project, lead_api, spool):
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    job = ImportJob.objects.get(pk=job_id)
    # Queued with the time by which a worker should have taken it; until then the recovery leaves it alone.
    assert job.status == "queued" and job.lease_until > timezone.now() and job.lease_owner == ""
    assert services.import_jobs_recover() == 0
    # Past it (its broker message lost, say): sent again, still queued, with a new deadline and no attempt spent.
    ImportJob.objects.filter(pk=job_id).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.import_jobs_recover() == 1
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "queued" and job.lease_until > timezone.now() and job.attempts == 0
    # Any worker may take a queued job before its deadline; a second message for it then finds nothing to take.
    services.import_job_run(job_id=job_id, worker="me:1")
    assert ImportJob.objects.get(pk=job_id).status == "succeeded" and Example.objects.count() == 10
    assert services.import_job_run(job_id=job_id, worker="other:1") is None
    assert Example.objects.count() == 10


def test_a_queued_import_whose_body_is_gone_fails_saying_so(project, lead_api, spool):
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    (spool / f"{job_id}.jsonl").unlink()
    ImportJob.objects.filter(pk=job_id).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.import_jobs_recover() == 0
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "failed" and "spooled body is gone" in job.error and job.finished_at


@pytest.fixture
def broker_down():
    """The broker refuses connections (nothing listens on its port) until the test ends."""
    from config.celery import app

    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app.amqp._producer_pool, app._pool = None, None
    yield
    app.conf.broker_url = saved
    app.amqp._producer_pool, app._pool = None, None


@pytest.mark.django_db(transaction=True)
def test_a_large_body_the_broker_refuses_is_503_saying_why_and_keeps_nothing(project, lead_api, spool, broker_down):
    answer = post_jsonl(lead_api, project.slug, jsonl(rows(20)))
    assert answer.status_code == 503, answer.content
    job = answer.json()
    assert job["status"] == "failed" and job["error"].startswith("it could not be queued for a worker")
    assert detail(lead_api, job["id"])["status"] == "failed"
    assert list(spool.iterdir()) == [] and not Example.objects.exists()


def test_a_job_another_worker_holds_is_left_alone(project, lead_api, spool):
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    alive = timezone.now() + timedelta(minutes=1)
    ImportJob.objects.filter(pk=job_id).update(status="running", lease_owner="other:1", lease_until=alive)
    assert services.import_job_run(job_id=job_id, worker="me:1") is None
    assert ImportJob.objects.get(pk=job_id).status == "running" and Example.objects.count() == 0


def test_the_detail_of_an_import_is_for_members_only(project, lead_api, outsider_api, expert_api, spool):
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    assert expert_api.get(f"/api/v1/projects/triage/imports/{job_id}/").json()["status"] == "queued"
    assert outsider_api.get(f"/api/v1/projects/triage/imports/{job_id}/").status_code == 404


@pytest.fixture
def worker(spool, tmp_path):
    """A real Celery worker on the default queue (PostgreSQL, Redis), seeing the test's data folder."""
    # Progress every 0.1 s: on a quiet machine the worker parses the 30,000 rows in well under a second.
    env = service_env(FINELINE_VAR_DIR=tmp_path, FINELINE_IMPORT_LEASE_SECONDS=3, FINELINE_IMPORT_PROGRESS_SECONDS=0.1)
    process = start_worker(env)
    yield process
    output = stop_worker(process)
    assert "Traceback" not in output, output


def watch(api, job_id: int, seconds: float = 180) -> list[tuple[str, int]]:
    """The job's (status, lines read) as its detail says, every 50 ms, until it ends."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = detail(api, job_id)
        if not seen or seen[-1] != (job["status"], job["total_lines"]):
            seen.append((job["status"], job["total_lines"]))
        if job["status"] not in ("queued", "running"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"import #{job_id} did not end: {seen[-3:]}")


def indexed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM curation_example WHERE search_vector IS NULL")
        return cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_a_real_worker_imports_a_large_body_queued_running_succeeded(project, lead_api, worker):
    count = 30_000
    answer = post_jsonl(lead_api, project.slug, jsonl(rows(count)))
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    seen = watch(lead_api, answer.json()["id"])
    statuses = [status for status, _ in seen]
    assert statuses[0] in ("queued", "running") and statuses[-1] == "succeeded"
    # Its progress shows while it runs (lines read, written every 0.1 s here).
    assert [lines for status, lines in seen if status == "running" and lines > 0], seen
    job = ImportJob.objects.get()
    assert (job.created_count, job.total_lines, job.attempts) == (count, count, 1)
    assert Example.objects.count() == count
    # What follows an import still follows it: the quality scan and the search index, done by the same worker.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (QualityScan.objects.filter(status="succeeded").exists() and indexed()):
        time.sleep(0.5)
    assert QualityScan.objects.get().status == "succeeded" and indexed()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_a_real_worker_fails_a_bad_large_body_in_atomic_mode_and_writes_nothing(project, lead_api, worker):
    body = jsonl([*rows(5000), {"messages": [{"role": "user"}]}, *rows(5000, 5000), b"[1, 2"])
    job_id = post_jsonl(lead_api, project.slug, body).json()["id"]
    assert watch(lead_api, job_id)[-1] == ("failed", 10_002)
    job = detail(lead_api, job_id)
    assert [e["line"] for e in job["errors"]] == [5001, 10_002] and job["created"] == 0
    assert not Example.objects.exists() and not QualityScan.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_an_import_whose_worker_is_killed_is_imported_by_the_next_one(project, lead_api, spool, tmp_path):
    env = service_env(FINELINE_VAR_DIR=tmp_path, FINELINE_IMPORT_LEASE_SECONDS=3)
    first = start_worker(env)
    count = 60_000
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(count))).json()["id"]
    deadline = time.monotonic() + 120
    while detail(lead_api, job_id)["total_lines"] < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_worker(first, signal.SIGKILL)  # mid-import: its transaction dies with it
    assert detail(lead_api, job_id)["status"] == "running" and not Example.objects.exists()
    time.sleep(3)  # its lease runs out
    second = start_worker(env)  # looks for lost jobs as it starts
    try:
        seen = watch(lead_api, job_id)
    finally:
        output = stop_worker(second)
    assert seen[-1] == ("succeeded", count), output
    job = ImportJob.objects.get()
    assert (job.created_count, job.attempts) == (count, 2) and Example.objects.count() == count
    assert list(spool.iterdir()) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_a_queued_import_whose_message_was_lost_is_imported_when_a_worker_starts(project, lead_api, spool, tmp_path):
    from config.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("default")  # what earlier tests left there
    job_id = post_jsonl(lead_api, project.slug, jsonl(rows(10))).json()["id"]
    with app.connection_for_write() as broker:  # the message is lost (a broker restarted without its data, say)
        assert broker.default_channel.queue_purge("default") == 1
    ImportJob.objects.filter(pk=job_id).update(lease_until=timezone.now() - timedelta(seconds=1))
    worker = start_worker(service_env(FINELINE_VAR_DIR=tmp_path))  # looks for lost jobs as it starts
    try:
        seen = watch(lead_api, job_id, seconds=60)
    finally:
        output = stop_worker(worker)
    assert seen[-1] == ("succeeded", 10), output
    assert Example.objects.count() == 10 and ImportJob.objects.get().attempts == 1


def test_the_queue_refuses_a_bad_mode_or_kind(project, lead, spool):
    with pytest.raises(services.ServiceError, match="mode"):
        services.import_job_queue(project=project, user=lead, stream=io.BytesIO(b"{}"), kind="jsonl", mode="some")
    with pytest.raises(services.ServiceError, match="xml"):
        services.import_job_queue(project=project, user=lead, stream=io.BytesIO(b"{}"), kind="xml")
    assert not ImportJob.objects.exists()
