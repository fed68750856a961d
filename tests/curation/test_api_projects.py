"""Projects over the API: membership decides what you see; only leads change settings."""

import pytest

from curation.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_creator_becomes_lead(lead_api, lead):
    lead.is_staff = True  # who may create projects: staff by default (tests/security/test_project_creation.py)
    lead.save()
    response = lead_api.post(
        "/api/v1/projects/",
        {"name": "Claims", "slug": "claims", "labels": ["A", "B"], "output_format": {"kind": "none"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["role"] == "lead"
    assert Membership.objects.get(project__slug="claims").user == lead


def test_list_shows_only_my_projects(project, lead, lead_api, outsider_api):
    from curation import services

    services.project_create(creator=lead, name="Secret", slug="secret")
    assert [p["slug"] for p in lead_api.get("/api/v1/projects/").json()] == ["secret", "triage"]
    assert outsider_api.get("/api/v1/projects/").json() == []


def test_non_member_gets_404_everywhere(project, outsider_api):
    for url in ["", "examples/", "imports/", "export/", "members/"]:
        assert outsider_api.get(f"/api/v1/projects/{project.slug}/{url}").status_code == 404, url
    assert outsider_api.patch(f"/api/v1/projects/{project.slug}/", {"name": "x"}, format="json").status_code == 404


def test_only_leads_change_settings(project, lead_api, expert_api):
    assert expert_api.get(f"/api/v1/projects/{project.slug}/").json()["role"] == "expert"
    assert expert_api.patch(f"/api/v1/projects/{project.slug}/", {"name": "x"}, format="json").status_code == 403
    response = lead_api.patch(
        f"/api/v1/projects/{project.slug}/",
        {"name": "Triage v2", "output_format": {"kind": "json_schema", "schema": {"type": "object"}}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert project.name == "Triage v2" and project.output_format["kind"] == "json_schema"


@pytest.mark.parametrize(
    "output_format",
    [{"kind": "xml"}, {"kind": "regex", "pattern": "("}, {"kind": "json_schema", "schema": {"type": 12}}, "none"],
)
def test_bad_output_format_is_a_clear_400(project, lead_api, output_format):
    response = lead_api.patch(f"/api/v1/projects/{project.slug}/", {"output_format": output_format}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "output_format"


def test_duplicate_slug_and_labels_are_refused(project, lead, lead_api):
    lead.is_staff = True
    lead.save()
    assert lead_api.post("/api/v1/projects/", {"name": "x", "slug": "triage"}, format="json").status_code == 400
    response = lead_api.post("/api/v1/projects/", {"name": "x", "slug": "y", "labels": ["A", "A"]}, format="json")
    assert response.status_code == 400
    assert not Project.objects.filter(slug="y").exists()


def test_leads_manage_members(project, lead_api, expert_api, outsider):
    assert (
        expert_api.post(
            f"/api/v1/projects/{project.slug}/members/", {"username": "olga", "role": "expert"}, format="json"
        ).status_code
        == 403
    )
    response = lead_api.post(
        f"/api/v1/projects/{project.slug}/members/", {"username": "olga", "role": "expert"}, format="json"
    )
    assert response.status_code == 200
    members = lead_api.get(f"/api/v1/projects/{project.slug}/members/").json()
    assert {m["username"]: m["role"] for m in members} == {"lena": "lead", "maria": "expert", "olga": "expert"}
    assert (
        lead_api.post(
            f"/api/v1/projects/{project.slug}/members/", {"username": "nobody", "role": "expert"}, format="json"
        ).status_code
        == 400
    )
