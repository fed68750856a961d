"""Listing, filtering and editing examples; a stale edit is a 409, never a silent overwrite."""

import pytest

from curation.models import Example, Revision

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def examples(project, lead_api):
    rows = [
        chat("database is down for everyone", label="P1", tags=["edge_case"]),
        chat("typo on the login page", label="P4"),
        chat("export cuts off long fields", label="P3"),
    ] + [chat(f"question {i}", label="P4") for i in range(7)]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    return list(Example.objects.filter(project=project).order_by("id"))


def url(project, pk=None):
    base = f"/api/v1/projects/{project.slug}/examples/"
    return f"{base}{pk}/" if pk else base


def test_filters(project, examples, expert_api):
    def ids(query):
        return [row["id"] for row in expert_api.get(url(project) + query).json()["results"]]

    assert ids("?label=P1") == [examples[0].pk]
    assert ids("?tag=edge_case") == [examples[0].pk]
    assert ids("?q=database") == [examples[0].pk]
    assert ids("?q=typo&label=P4") == [examples[1].pk]
    assert len(ids("?status=pending")) == 10
    assert ids("?status=approved") == []
    assert expert_api.get(url(project) + "?status=maybe").status_code == 400


def test_cursor_pagination_walks_every_example_once(project, examples, expert_api):
    seen, next_url = [], url(project) + "?page_size=3"
    while next_url:
        page = expert_api.get(next_url).json()
        seen += [row["id"] for row in page["results"]]
        next_url = page["next"]
    assert seen == [e.pk for e in examples]


def test_patch_with_current_version_saves_and_keeps_history(project, examples, lead_api, lead):
    """A lead's edit (only leads set `status` directly: tests/security/test_review_rules.py)."""
    example = examples[1]
    messages = [dict(m) for m in example.messages]
    messages[-1]["content"] = "SEVERITY: P4\nIMPACT: Cosmetic\nACTION: Log a bug"
    response = lead_api.patch(
        url(project, example.pk),
        {"version": 1, "messages": messages, "label": "P4", "tags": ["cosmetic"], "status": "approved"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["version"], response.json()["status"]) == (2, "approved")
    revisions = list(Revision.objects.filter(example=example).order_by("version"))
    assert [(r.version, r.kind) for r in revisions] == [(1, "import"), (2, "edit")]
    assert revisions[0].messages == example.messages  # the original survives
    assert revisions[1].author == lead and revisions[1].messages[-1]["content"].endswith("Log a bug")


def test_stale_patch_is_409_with_current_state_and_overwrites_nothing(project, examples, expert_api, lead_api):
    example = examples[2]
    assert lead_api.patch(url(project, example.pk), {"version": 1, "label": "P2"}, format="json").status_code == 200
    response = expert_api.patch(url(project, example.pk), {"version": 1, "label": "P3"}, format="json")
    assert response.status_code == 409
    assert response.json()["current"]["label"] == "P2"
    assert response.json()["current"]["version"] == 2
    example.refresh_from_db()
    assert (example.label, example.version) == ("P2", 2)


def test_patch_needs_a_version_and_valid_content(project, examples, expert_api):
    target = url(project, examples[0].pk)
    assert expert_api.patch(target, {"label": "P2"}, format="json").status_code == 400
    response = expert_api.patch(target, {"version": 1, "messages": [{"role": "user", "content": "x"}]}, format="json")
    assert response.status_code == 400 and "assistant" in response.json()["detail"]
    assert expert_api.patch(target, {"version": 1, "label": "P9"}, format="json").status_code == 400
    duplicate = expert_api.patch(target, {"version": 1, "messages": examples[1].messages}, format="json")
    assert duplicate.status_code == 400 and f"#{examples[1].pk}" in duplicate.json()["detail"]
    examples[0].refresh_from_db()
    assert examples[0].version == 1


def test_example_of_another_project_is_404(project, examples, lead, lead_api):
    from curation import services

    services.project_create(creator=lead, name="Other", slug="other")
    assert lead_api.get(f"/api/v1/projects/other/examples/{examples[0].pk}/").status_code == 404
