"""Finding High 1, last part: who may create a project (and so become a lead) is a setting, staff by default."""

import pytest

from curation.models import Membership, Project

pytestmark = pytest.mark.django_db
BODY = {"name": "Claims", "slug": "claims"}


def test_by_default_only_staff_create_projects(lead, lead_api, client):
    response = lead_api.post("/api/v1/projects/", BODY, format="json")
    assert response.status_code == 403 and "staff" in response.json()["detail"]
    assert not Project.objects.filter(slug="claims").exists()
    client.force_login(lead)
    assert "an administrator creates new projects" in client.get("/").content.decode()
    assert "POST /api/v1/projects/" not in client.get("/").content.decode()

    lead.is_staff = True
    lead.save()
    assert lead_api.post("/api/v1/projects/", BODY, format="json").status_code == 201
    assert Membership.objects.get(project__slug="claims").user == lead


def test_any_user_may_create_projects_when_the_setting_says_so(outsider, outsider_api, client, settings):
    settings.FINELINE_PROJECT_CREATORS = "any"
    assert outsider_api.post("/api/v1/projects/", BODY, format="json").status_code == 201
    client.force_login(outsider)
    Membership.objects.filter(user=outsider).delete()
    assert "POST /api/v1/projects/" in client.get("/").content.decode()
