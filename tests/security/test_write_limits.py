"""The import's limits hold for every write (an edit's metadata nested 900 deep used to be accepted, 5,000 deep was a
500), and an export that cannot write a row says so instead of ending early as if it were whole."""

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from curation import selectors, services
from curation.models import Draft, Example

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.fixture
def examples(project, lead_api):
    post_jsonl(lead_api, project.slug, jsonl([chat(f"question {n}") for n in range(10)]))
    return list(Example.objects.filter(project=project).order_by("id"))


@pytest.mark.parametrize("depth", [33, 900, 5000])
def test_deep_metadata_in_an_edit_is_a_400(examples, lead_api, depth):
    example = examples[0]
    body = b'{"version": 1, "metadata": ' + b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1) + b"}"
    response = lead_api.generic(
        "PATCH", f"/api/v1/projects/triage/examples/{example.pk}/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    example.refresh_from_db()
    assert example.version == 1 and example.metadata == {}


def test_metadata_as_deep_as_an_import_allows_is_saved(examples, lead_api):
    example = examples[0]
    response = lead_api.patch(
        f"/api/v1/projects/triage/examples/{example.pk}/", {"version": 1, "metadata": nested(32)}, format="json"
    )
    assert response.status_code == 200, response.content


def test_metadata_over_the_line_limit_is_a_400(examples, lead_api, settings):
    settings.FINELINE_IMPORT_MAX_LINE_BYTES = 1000
    example = examples[0]
    response = lead_api.patch(
        f"/api/v1/projects/triage/examples/{example.pk}/", {"version": 1, "metadata": {"x": "y" * 2000}}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "metadata", response.content


def test_a_row_deeper_than_orjson_writes_still_exports(examples, lead_api):
    """Rows stored before the limits (300 deep: past orjson's 254) export through the slower encoder."""
    Example.objects.filter(pk=examples[3].pk).update(metadata=nested(300))
    response = lead_api.get("/api/v1/projects/triage/export/")
    lines = b"".join(response.streaming_content).splitlines()
    assert len(lines) == 10
    assert orjson.loads(lines[3])["metadata"] == nested(300)


def test_an_export_that_cannot_write_a_row_says_so(examples, lead_api, lead, tmp_path):
    deep = '{"a":' * 1999 + "{}" + "}" * 1999  # past every encoder's limit; stored as text, as an old row might be
    with connection.cursor() as cursor:
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        cursor.execute(f"UPDATE curation_example SET metadata = %s{cast} WHERE id = %s", [deep, examples[7].pk])
    response = lead_api.get("/api/v1/projects/triage/export/")
    received = []
    with pytest.raises(selectors.ExportError):
        for chunk in response.streaming_content:
            received.append(chunk)
    lines = b"".join(received).splitlines()
    assert len(lines) == 8  # seven examples, then the line that says the export stopped
    assert "stopped after 7 example(s)" in orjson.loads(lines[-1])["error"]

    with pytest.raises(CommandError, match="stopped after 7"):
        call_command("export_examples", "triage", "--output", str(tmp_path / "out.jsonl"))


@pytest.mark.parametrize(
    "form", [{"label": "x" * 150}, {"tags": "a" * 60}, {"comment": "a\x00b"}, {"role_0": "user", "content_0": "\x00"}]
)
def test_a_malformed_draft_is_refused_not_a_500(examples, expert, client, form):
    client.force_login(expert)
    example = examples[0]
    services.review_lock_claim(example=example, reviewer=expert)
    response = client.post(f"/projects/triage/examples/{example.pk}/draft/", {"version": 1, **form})
    assert response.status_code in (400, 422)  # NUL characters: the middleware's 400; the rest: the draft's 422
    assert not Draft.objects.filter(example=example).exists()


def test_an_api_json_body_past_the_bound_is_a_413_before_it_is_parsed(examples, lead_api, settings):
    """A JSON body over the limit was an HTML "Bad Request (400)" page; it is the API's JSON 413."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = orjson.dumps({"version": 1, "tags": ["x" * 40] * 100})
    response = lead_api.generic(
        "PATCH", f"/api/v1/projects/triage/examples/{examples[0].pk}/", body, content_type="application/json"
    )
    assert response.status_code == 413, response.content
    assert "over 2,000 bytes" in response.json()["detail"]
    examples[0].refresh_from_db()
    assert examples[0].version == 1
