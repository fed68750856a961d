"""Large imports: a body over FINELINE_IMPORT_SYNC_MAX_BYTES is spooled and answered 202; a worker imports it (here
the service a worker calls, run in the test), the job's detail says how far it got, then gives the same report as a
synchronous import. A smaller body is still imported within its request."""

import io
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from curation import services
from curation.models import Example, ImportJob

from ..helpers import chat, jsonl, post_jsonl

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
