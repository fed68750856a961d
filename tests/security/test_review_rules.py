"""Only a lead sets an example's status directly: an expert's edit or restore cannot approve an example that the
review has not settled (with three reviews required, an expert's PATCH used to approve it with none)."""

import pytest

from curation import services
from curation.models import Example, ReviewStatus

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def example(project, lead_api):
    services.project_update(project=project, reviews_required=3)
    post_jsonl(lead_api, project.slug, jsonl([chat("printer on fire")]))
    return Example.objects.get(project=project)


def test_an_expert_cannot_patch_the_status(example, expert_api):
    url = f"/api/v1/projects/triage/examples/{example.pk}/"
    response = expert_api.patch(url, {"version": example.version, "status": "approved"}, format="json")
    assert response.status_code == 403, response.content
    assert "lead" in response.json()["detail"]
    example.refresh_from_db()
    assert example.status == ReviewStatus.PENDING and example.version == 1


def test_an_expert_still_edits_the_content(example, expert_api):
    url = f"/api/v1/projects/triage/examples/{example.pk}/"
    response = expert_api.patch(url, {"version": example.version, "tags": ["checked"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == ["checked"]


def test_a_lead_sets_the_status(example, lead_api):
    url = f"/api/v1/projects/triage/examples/{example.pk}/"
    response = lead_api.patch(url, {"version": example.version, "status": "approved"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"


def test_an_experts_restore_keeps_the_status_the_review_made(example, lead, expert, client):
    """The lead approved, then rejected; restoring the approved version as an expert brings back the content,
    never the approval."""
    services.example_update(example=example, user=lead, version=1, changes={"status": "approved", "tags": ["a"]})
    services.example_update(example=example, user=lead, version=2, changes={"status": "rejected", "tags": ["b"]})
    client.force_login(expert)
    url = f"/projects/triage/examples/{example.pk}/restore/2/"
    response = client.post(url, {"version": 3})
    assert response.status_code == 302
    example.refresh_from_db()
    assert example.tags == ["a"] and example.status == ReviewStatus.REJECTED

    # Nothing but the status differs now: the expert is told why nothing happened.
    response = client.post(url, {"version": example.version}, follow=True)
    assert "only a lead can restore its status" in response.content.decode()
    example.refresh_from_db()
    assert example.status == ReviewStatus.REJECTED


def test_a_leads_restore_brings_the_status_back(example, lead, client):
    services.example_update(example=example, user=lead, version=1, changes={"status": "approved"})
    services.example_update(example=example, user=lead, version=2, changes={"status": "rejected"})
    client.force_login(lead)
    client.post(f"/projects/triage/examples/{example.pk}/restore/2/", {"version": 3})
    example.refresh_from_db()
    assert example.status == ReviewStatus.APPROVED


def test_a_restore_with_a_malformed_version_is_a_400(example, lead, expert, client):
    services.example_update(example=example, user=lead, version=1, changes={"tags": ["a"]})
    client.force_login(expert)
    response = client.post(f"/projects/triage/examples/{example.pk}/restore/1/", {"version": "abc"})
    assert response.status_code == 400
