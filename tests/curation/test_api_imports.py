"""The import contract of POST /api/v1/projects/<slug>/imports/, against PostgreSQL."""

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from curation import formats
from curation.models import Example, ImportJob

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def test_jsonl_import_creates_examples_with_label_and_tags(project, lead_api):
    body = jsonl([chat("db down", label="P1", tags=["edge_case"]), chat("typo", metadata={"label": "P4", "k": 1})])
    response = post_jsonl(lead_api, project.slug, body)
    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in ("created", "duplicates", "rejected", "errors")} == {
        "created": 2,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }
    first, second = Example.objects.filter(project=project).order_by("id")
    assert (first.label, first.tags, first.status, first.version) == ("P1", ["edge_case"], "pending", 1)
    assert (second.label, second.metadata) == ("P4", {"k": 1})
    job = ImportJob.objects.get()
    assert (job.created_by.username, job.mode, job.status, job.total_lines) == ("lena", "atomic", "succeeded", 2)


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl"])
def test_both_jsonl_media_types_are_accepted(project, lead_api, content_type):
    response = post_jsonl(lead_api, project.slug, jsonl([chat("a")]), content_type=content_type)
    assert response.status_code == 201


def test_atomic_mode_writes_nothing_and_reports_every_bad_line(project, lead_api):
    body = jsonl([chat("ok 1"), b"{broken", chat("ok 2"), {"messages": []}, chat("ok 3", label="P7")])
    response = post_jsonl(lead_api, project.slug, body)
    assert response.status_code == 400
    report = response.json()
    assert report["created"] == 0 and report["rejected"] == 3
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (2, "invalid_json"),
        (4, "empty_messages"),
        (5, "unknown_label"),
    ]
    assert Example.objects.count() == 0
    assert ImportJob.objects.get().status == "failed"


def test_partial_mode_writes_the_valid_lines(project, lead_api):
    body = jsonl([chat("ok 1"), b"{broken", chat("ok 2")])
    response = post_jsonl(lead_api, project.slug, body, "?mode=partial")
    assert response.status_code == 201
    assert (response.json()["created"], response.json()["rejected"]) == (2, 1)
    assert response.json()["errors"][0]["line"] == 2
    assert Example.objects.count() == 2


def test_reimport_is_idempotent_and_duplicates_in_the_file_are_counted(project, lead_api):
    body = jsonl([chat("a"), chat("b"), chat("a")])
    first = post_jsonl(lead_api, project.slug, body).json()
    assert (first["created"], first["duplicates"]) == (2, 1)
    again = post_jsonl(lead_api, project.slug, body).json()
    assert (again["created"], again["duplicates"]) == (0, 3)
    assert Example.objects.count() == 2


def test_the_same_content_may_live_in_two_projects(project, lead, lead_api):
    from curation import services

    services.project_create(creator=lead, name="Other", slug="other")
    body = jsonl([chat("a")])
    assert post_jsonl(lead_api, project.slug, body).json()["created"] == 1
    assert post_jsonl(lead_api, "other", body).json()["created"] == 1


def test_json_array_body(project, lead_api):
    body = orjson.dumps([chat("a"), chat("b"), {"messages": "nope"}])
    response = lead_api.generic(
        "POST", f"/api/v1/projects/{project.slug}/imports/?mode=partial", body, content_type="application/json"
    )
    assert response.status_code == 201
    assert (response.json()["created"], response.json()["errors"][0]["line"]) == (2, 3)


@pytest.mark.parametrize("name", ["data.jsonl", "data.json"])
def test_multipart_file(project, lead_api, name):
    rows = [chat("a"), chat("b")]
    content = orjson.dumps(rows) if name.endswith(".json") else jsonl(rows)
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    response = lead_api.post(f"/api/v1/projects/{project.slug}/imports/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    assert response.json()["source"] == f"file:{name}"


def test_multipart_without_file_is_a_clear_400(project, lead_api):
    response = lead_api.post(f"/api/v1/projects/{project.slug}/imports/", {"other": "x"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_other_formats_import(project, lead_api):
    body = jsonl(
        [
            {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "SEVERITY: P4"}]},
            {"instruction": "triage", "input": "db down", "output": "SEVERITY: P1"},
            {"prompt": "typo", "completion": "SEVERITY: P4"},
        ]
    )
    response = post_jsonl(lead_api, project.slug, body)
    assert response.json()["created"] == 3
    roles = [[m["role"] for m in e.messages] for e in Example.objects.order_by("id")]
    assert roles == [["user", "assistant"]] * 3


def test_deep_nesting_is_a_400_naming_the_line(project, lead_api):
    body = jsonl([chat("fine")]) + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    response = post_jsonl(lead_api, project.slug, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 2, "code": "too_deep", "message": "JSON nested too deeply."}]


def test_deep_nesting_as_a_json_document(project, lead_api):
    body = b"[" * 100_000 + b"]" * 100_000
    response = lead_api.generic(
        "POST", f"/api/v1/projects/{project.slug}/imports/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_deep"


def test_invalid_utf8_is_a_400_naming_the_line(project, lead_api):
    body = jsonl([chat("fine")]) + b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n'
    response = post_jsonl(lead_api, project.slug, body)
    assert response.status_code == 400
    assert [(e["line"], e["code"]) for e in response.json()["errors"]] == [(2, "invalid_utf8")]


@override_settings(FINELINE_IMPORT_MAX_BODY_BYTES=1000)
def test_a_body_over_the_limit_is_a_json_413(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl([chat(f"ticket {i}") for i in range(50)]))
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "limit" in response.json()["detail"]
    assert Example.objects.count() == 0


def test_a_body_that_grows_past_the_limit_while_streaming_writes_nothing(project, lead):
    # A chunked upload has no Content-Length to check up front: the reader must stop on its own, even in partial mode.
    import io

    from curation import formats, services

    body = io.BytesIO(jsonl([chat(f"ticket {i}") for i in range(50)]))
    records = formats.read_jsonl(body, fmt="auto", labels=[], limits=services.import_limits(), max_body_bytes=1000)
    with pytest.raises(formats.BodyTooLarge):
        services.import_examples(project=project, user=lead, records=records, mode="partial")
    assert Example.objects.count() == 0
    job = ImportJob.objects.get()
    assert (job.status, job.errors[-1]["code"]) == ("failed", "body_too_large")


@override_settings(FINELINE_IMPORT_MAX_TOKENS=10)
def test_too_many_tokens(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl([chat("a long ticket " * 10)]))
    assert response.json()["errors"][0]["code"] == "too_many_tokens"


def test_unsupported_content_type_is_415(project, lead_api):
    response = lead_api.generic("POST", f"/api/v1/projects/{project.slug}/imports/", b"a,b", content_type="text/csv")
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["detail"]


@pytest.mark.parametrize("query", ["?mode=sometimes", "?format=csv"])
def test_bad_mode_or_format_is_400(project, lead_api, query):
    response = post_jsonl(lead_api, project.slug, jsonl([chat("a")]), query)
    assert response.status_code == 400


def test_non_member_gets_404_and_expert_gets_403(project, outsider_api, expert_api):
    assert post_jsonl(outsider_api, project.slug, jsonl([chat("a")])).status_code == 404
    assert post_jsonl(expert_api, project.slug, jsonl([chat("a")])).status_code == 403
    assert Example.objects.count() == 0


def test_unauthenticated_gets_401(project, client):
    response = client.post(f"/api/v1/projects/{project.slug}/imports/", b"", content_type="application/x-ndjson")
    assert response.status_code in (401, 403)


def test_reports_are_listed_and_fetchable(project, lead_api, expert_api):
    job_id = post_jsonl(lead_api, project.slug, jsonl([chat("a"), b"{"]), "?mode=partial").json()["id"]
    listed = expert_api.get(f"/api/v1/projects/{project.slug}/imports/").json()
    assert [job["id"] for job in listed] == [job_id]
    detail = expert_api.get(f"/api/v1/projects/{project.slug}/imports/{job_id}/").json()
    assert detail["errors"][0]["line"] == 2


@override_settings(FINELINE_IMPORT_MAX_REPORTED_ERRORS=5)
def test_the_report_is_capped_but_the_count_is_not(project, lead_api):
    response = post_jsonl(lead_api, project.slug, b"{\n" * 20)
    assert response.json()["rejected"] == 20
    assert len(response.json()["errors"]) == 5 and response.json()["errors_truncated"] is True


def test_thousands_of_examples_in_one_request(project, lead_api):
    body = jsonl([chat(f"ticket number {i}", label=f"P{i % 4 + 1}") for i in range(5000)])
    response = post_jsonl(lead_api, project.slug, body)
    assert response.json()["created"] == 5000
    assert Example.objects.filter(project=project, label="P1").count() == 1250


def test_tricky_text_is_stored_exactly(project, lead_api):
    content = 'C:\\new\\table\t"quoted"\r\nline 2 \\u0041 é 日本 🚀 \x7f'
    metadata = {"path": "a\\b\tc\nd", "nested": {"list": ["\\", "\t"]}}
    row = chat(content, label="P2", tags=["tab\there", "back\\slash"], metadata=metadata)
    assert post_jsonl(lead_api, project.slug, jsonl([row])).status_code == 201
    example = Example.objects.get()
    assert example.messages[1]["content"] == content
    assert (example.tags, example.metadata) == (["tab\there", "back\\slash"], metadata)
    upload = SimpleUploadedFile("tab\tname.jsonl", jsonl([chat("x")]), content_type="application/octet-stream")
    response = lead_api.post(f"/api/v1/projects/{project.slug}/imports/", {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert Example.objects.get(messages__1__content="x").source == response.json()["source"]


def test_a_nul_or_lone_surrogate_quoted_in_an_error_is_stored_escaped(project, lead_api):
    """Found by schemathesis: an unknown key named with a NUL went into the stored report and PostgreSQL refused it."""
    line = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "k\\u0000": 1}'
    response = post_jsonl(lead_api, project.slug, line + b"\n")
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert "\x00" not in message and "\\u0000" in message
    job = response.json()["id"]
    assert lead_api.get(f"/api/v1/projects/{project.slug}/imports/{job}/").status_code == 200
    assert formats.printable("a \x00 and a lone \udb43") == "a \\u0000 and a lone \\udb43"
