"""The import contract of POST /api/v1/projects/<slug>/imports/, against PostgreSQL."""

import io
from urllib.parse import urlencode

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
    assert (response.json()["status"], response.json()["created"], response.json()["rejected"]) == ("partial", 2, 1)
    assert response.json()["errors"][0]["line"] == 2
    assert Example.objects.count() == 2
    assert ImportJob.objects.get().status == "partial"


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
    response = lead_api.generic("POST", f"/api/v1/projects/{project.slug}/imports/", b"a,b", content_type="text/xml")
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["detail"] and "text/csv" in response.json()["detail"]


@pytest.mark.parametrize("query", ["?mode=sometimes", "?format=xlsx"])
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


# --- Column mapping, CSV and Parquet, and what the status says --------------------------------------------------

DOLLY = [
    {"instruction": "Triage this ticket", "context": "db down in eu-1", "response": "SEVERITY: P1", "category": "P1"},
    {"instruction": "Triage: typo on the pricing page", "context": "", "response": "SEVERITY: P4", "category": "P4"},
    {"instruction": "Summarise", "context": None, "response": "SEVERITY: P3", "category": "P3", "source": "kb"},
]
DOLLY_MAPPING = {
    "user": ["instruction", "context"],
    "assistant": "response",
    "label": "category",
    "metadata": ["source"],
}


def mapping_query(mapping, extra: str = "") -> str:
    return "?" + urlencode({"mapping": orjson.dumps(mapping).decode()}) + extra


def test_a_mapping_imports_rows_in_another_shape(project, lead_api):
    rows = [{**DOLLY[0], "id": 7}, *DOLLY[1:]]
    mapping = {"system": "sys", **DOLLY_MAPPING}
    rows[0]["sys"] = "Be brief."
    response = post_jsonl(lead_api, project.slug, jsonl(rows), mapping_query(mapping))
    assert response.status_code == 201, response.json()
    report = response.json()
    assert (report["status"], report["created"], report["rejected"]) == ("succeeded", 3, 0)
    assert report["mapping"] == mapping
    assert report["ignored_keys"] == {"id": 1}  # not named by the mapping: counted once, not imported
    first, second, third = Example.objects.filter(project=project).order_by("id")
    assert first.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Triage this ticket\n\ndb down in eu-1"},
        {"role": "assistant", "content": "SEVERITY: P1"},
    ]
    assert (first.label, first.metadata) == ("P1", {})
    # An empty (or null) context is skipped, not joined as a blank paragraph.
    assert second.messages == [
        {"role": "user", "content": "Triage: typo on the pricing page"},
        {"role": "assistant", "content": "SEVERITY: P4"},
    ]
    assert third.messages[0]["content"] == "Summarise" and third.metadata == {"source": "kb"}
    assert ImportJob.objects.get().mapping == mapping


def test_mapped_rows_are_checked_line_by_line(project, lead_api):
    rows = [
        DOLLY[0],
        {"instruction": "no answer", "category": "P1"},
        {"context": "", "response": "SEVERITY: P2"},
        {**DOLLY[1], "category": "P9"},
        {**DOLLY[1], "response": ["not", "text"]},
    ]
    response = post_jsonl(lead_api, project.slug, jsonl(rows), mapping_query(DOLLY_MAPPING, "&mode=partial"))
    assert response.status_code == 201
    report = response.json()
    assert (report["status"], report["created"], report["rejected"]) == ("partial", 1, 4)
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (2, "missing_value"),
        (3, "missing_value"),
        (4, "unknown_label"),
        (5, "content_not_string"),
    ]
    assert "`response` (mapped to assistant)" in report["errors"][0]["message"]
    assert "`instruction`, `context` (mapped to user)" in report["errors"][1]["message"]


@pytest.mark.parametrize(
    "mapping, fragment",
    [
        ("{not json", "not valid JSON"),
        ('["user"]', "must be a JSON object"),
        ('{"user": "q", "assistant": "a", "answer": "x"}', "unknown target(s) 'answer'"),
        ('{"user": "q"}', "must name the key(s) of assistant"),
        ('{"user": ["q", 3], "assistant": "a"}', "`mapping.user` must be a key name"),
        ('{"user": "q", "assistant": "a", "label": ["c"]}', "`mapping.label` must be the name of one key"),
        ('{"user": "", "assistant": "a"}', "`mapping.user` must be a key name"),
    ],
)
def test_a_bad_mapping_is_a_clear_400_before_anything_is_read(project, lead_api, mapping, fragment):
    response = post_jsonl(lead_api, project.slug, jsonl(DOLLY), "?" + urlencode({"mapping": mapping}))
    assert response.status_code == 400
    assert fragment in response.json()["mapping"][0]
    assert not ImportJob.objects.exists() and not Example.objects.exists()


def test_a_mapping_and_a_row_format_exclude_each_other(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl(DOLLY), mapping_query(DOLLY_MAPPING, "&format=alpaca"))
    assert response.status_code == 400 and "replaces `format=alpaca`" in response.json()["mapping"][0]


def test_unknown_keys_say_that_a_mapping_exists_and_suggest_one(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl(DOLLY[:1]))
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert response.json()["errors"][0]["code"] == "unknown_key"
    assert "column mapping" in message and "mapping=" in message
    suggested = orjson.loads(message.split("mapping=")[-1].rstrip("."))
    assert suggested == {"user": ["instruction", "context"], "assistant": "response", "label": "category"}
    # The suggestion works as it is.
    again = post_jsonl(lead_api, project.slug, jsonl(DOLLY[:1]), mapping_query(suggested))
    assert again.status_code == 201 and again.json()["created"] == 1


def test_question_answer_rows_get_the_hint_too(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl([{"question": "db down?", "answer": "SEVERITY: P1"}]))
    error = response.json()["errors"][0]
    assert error["code"] == "missing_messages"
    assert 'mapping={"user": "question", "assistant": "answer"}' in error["message"]


def test_csv_body_with_a_mapping(project, lead_api):
    body = (
        "\ufeffinstruction,context,response,category,source\r\n"
        'Triage this ticket,"db down,\nin eu-1",SEVERITY: P1,P1,kb\r\n'
        "Triage: typo,,SEVERITY: P4,P4,\r\n"
        "only two,fields\r\n"
        "Summarise,ctx,SEVERITY: P3,P7,kb\r\n"
    ).encode()
    response = post_jsonl(lead_api, project.slug, body, mapping_query(DOLLY_MAPPING, "&mode=partial"), "text/csv")
    assert response.status_code == 201, response.json()
    report = response.json()
    assert (report["status"], report["format"], report["created"], report["rejected"]) == ("partial", "csv", 2, 2)
    # Lines are the CSV's: the header is line 1, and the first record spans lines 2-3.
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(5, "csv_columns"), (6, "unknown_label")]
    first, second = Example.objects.filter(project=project).order_by("id")
    assert first.messages[0]["content"] == "Triage this ticket\n\ndb down,\nin eu-1"
    assert (first.label, first.metadata) == ("P1", {"source": "kb"})
    assert (second.messages[0]["content"], second.metadata) == ("Triage: typo", {})


def test_csv_in_a_known_shape_needs_no_mapping(project, lead_api):
    body = b"instruction,input,output,label\nTriage,db down,SEVERITY: P1,P1\nTriage,,SEVERITY: P4,\n"
    response = post_jsonl(lead_api, project.slug, body, "?format=csv", "application/octet-stream")
    assert response.status_code == 201, response.json()
    assert [(e.messages[0]["content"], e.label) for e in Example.objects.order_by("id")] == [
        ("Triage\n\ndb down", "P1"),
        ("Triage", ""),
    ]


def test_csv_with_bad_utf8_names_the_record(project, lead_api):
    body = b"question,answer\nok,SEVERITY: P1\ncaf\xe9,SEVERITY: P2\n"
    query = mapping_query({"user": "question", "assistant": "answer"})
    response = post_jsonl(lead_api, project.slug, body, query, "text/csv")
    assert response.status_code == 400
    assert [(e["line"], e["code"]) for e in response.json()["errors"]] == [(3, "invalid_utf8")]


def parquet_bytes(rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=2)
    return buffer.getvalue()


def test_parquet_body_with_a_mapping(project, lead_api):
    rows = [
        {**row, "context": row["context"] or None, "source": row.get("source"), "n": i} for i, row in enumerate(DOLLY)
    ]
    rows.append(
        {"instruction": "no answer", "context": None, "response": None, "category": "P1", "source": None, "n": 3}
    )
    body = parquet_bytes(rows)
    query = mapping_query(DOLLY_MAPPING, "&mode=partial")
    response = post_jsonl(lead_api, project.slug, body, query, "application/vnd.apache.parquet")
    assert response.status_code == 201, response.json()
    report = response.json()
    assert (report["status"], report["format"], report["created"]) == ("partial", "parquet", 3)
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(4, "missing_value")]  # row numbers
    assert report["ignored_keys"] == {"n": 4}
    assert Example.objects.get(metadata__source="kb").messages[0]["content"] == "Summarise"


def test_parquet_and_csv_uploads_are_read_by_their_extension(project, lead_api):
    upload = SimpleUploadedFile("dolly.parquet", parquet_bytes(DOLLY[:2]), content_type="application/octet-stream")
    url = f"/api/v1/projects/{project.slug}/imports/{mapping_query(DOLLY_MAPPING)}"
    response = lead_api.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    assert (response.json()["created"], response.json()["source"]) == (2, "file:dolly.parquet")
    csv_body = b"question,answer\nIs the API down?,SEVERITY: P1\n"
    upload = SimpleUploadedFile("qa.csv", csv_body, content_type="text/csv")
    query = mapping_query({"user": "question", "assistant": "answer"})
    response = lead_api.post(f"/api/v1/projects/{project.slug}/imports/{query}", {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["format"] == "csv"


def test_a_file_that_is_not_parquet_fails_with_a_report(project, lead_api):
    response = post_jsonl(lead_api, project.slug, b"not parquet at all", "", "application/x-parquet")
    assert response.status_code == 400
    assert response.json()["status"] == "failed"
    assert [(e["line"], e["code"]) for e in response.json()["errors"]] == [(0, "invalid_parquet")]


def test_partial_mode_where_every_line_is_rejected_fails(project, lead_api):
    response = post_jsonl(lead_api, project.slug, jsonl([b"{", {"messages": []}]), "?mode=partial")
    assert response.status_code == 400
    report = response.json()
    assert (report["status"], report["created"], report["rejected"]) == ("failed", 0, 2)
    assert ImportJob.objects.get().status == "failed" and not Example.objects.exists()


def test_partial_status_and_duplicates(project, lead_api):
    post_jsonl(lead_api, project.slug, jsonl([chat("a")]))
    # Every valid line is a duplicate, one is rejected: something was kept, some was not.
    response = post_jsonl(lead_api, project.slug, jsonl([chat("a"), b"{"]), "?mode=partial")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["duplicates"]) == ("partial", 1)
    # Every line a duplicate, none rejected: a success.
    again = post_jsonl(lead_api, project.slug, jsonl([chat("a")]), "?mode=partial")
    assert (again.status_code, again.json()["status"]) == (201, "succeeded")


@pytest.mark.parametrize("mode", ["atomic", "partial"])
def test_an_import_of_nothing_is_not_a_success(project, lead_api, mode):
    response = post_jsonl(lead_api, project.slug, b"\n  \n", f"?mode={mode}")
    assert response.status_code == 400
    report = response.json()
    assert (report["status"], report["total_lines"], report["rejected"]) == ("failed", 0, 0)
    assert report["errors"] == [{"line": 0, "code": "no_examples", "message": "the input holds no examples."}]
    header_only = post_jsonl(lead_api, project.slug, b"question,answer\n", "", "text/csv")
    assert (header_only.status_code, header_only.json()["status"]) == (400, "failed")


def test_preview_shows_keys_a_suggested_mapping_and_the_first_rows(project, lead_api):
    rows = [*DOLLY, *[{**DOLLY[0], "instruction": f"ticket {i}"} for i in range(10)]]
    url = f"/api/v1/projects/{project.slug}/imports/preview/"
    response = lead_api.generic("POST", url, jsonl(rows), content_type="application/x-ndjson")
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["format"] == "jsonl"
    assert preview["keys"] == ["instruction", "context", "response", "category", "source"]
    assert preview["needs_mapping"] is True
    assert preview["suggested_mapping"] == DOLLY_MAPPING
    assert len(preview["rows"]) == 5
    assert preview["rows"][0]["example"]["messages"][0]["content"] == "Triage this ticket\n\ndb down in eu-1"
    assert not Example.objects.exists() and not ImportJob.objects.exists()
    query = mapping_query({"user": "instruction", "assistant": "response"})
    mapped = lead_api.generic("POST", url + query, jsonl(rows), content_type="application/x-ndjson").json()
    assert mapped["rows"][0]["example"]["messages"][0]["content"] == "Triage this ticket"
    assert mapped["ignored_keys"] == ["category", "context", "source"]
