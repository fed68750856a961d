"""Export streams JSONL in the OpenAI chat format, and importing it reproduces the same examples."""

import orjson
import pytest

from curation import services
from curation.models import Example

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def snapshot(project):
    return sorted(
        (orjson.dumps(e.messages, option=orjson.OPT_SORT_KEYS), e.label, tuple(e.tags), orjson.dumps(e.metadata))
        for e in Example.objects.filter(project=project)
    )


def test_export_round_trip_into_an_empty_project(project, lead, lead_api):
    rows = [chat("a", label="P1", tags=["edge_case"], metadata={"ticket": "T-1"}), chat("b\n\n  kept  "), chat("c")]
    post_jsonl(lead_api, project.slug, jsonl(rows))
    response = lead_api.get(f"/api/v1/projects/{project.slug}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    exported = body(response)
    assert len(exported.splitlines()) == 3

    empty = services.project_create(creator=lead, name="Copy", slug="copy", labels=["P1", "P2", "P3", "P4"])
    assert post_jsonl(lead_api, "copy", exported).json()["created"] == 3
    assert snapshot(empty) == snapshot(project)


def test_export_filters_and_messages_only(project, lead_api):
    post_jsonl(lead_api, project.slug, jsonl([chat("a", label="P1"), chat("b", label="P2")]))
    lines = body(lead_api.get(f"/api/v1/projects/{project.slug}/export/?label=P2&messages_only=true")).splitlines()
    assert len(lines) == 1 and set(orjson.loads(lines[0])) == {"messages"}


def test_experts_may_export_outsiders_may_not(project, expert_api, outsider_api):
    assert expert_api.get(f"/api/v1/projects/{project.slug}/export/").status_code == 200
    assert outsider_api.get(f"/api/v1/projects/{project.slug}/export/").status_code == 404
