"""Duplicate clusters: one definition (two or more members not rejected, pending ones included), one count on the
dashboard, the API, the scan and the readiness verdict, and a paged list with its total."""

import pytest
from django.test import Client

from curation import selectors, services
from curation.models import Example

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def clustered(project, lead_api):
    """Three pairs of near duplicates among singles: one pair approved, one pending, one with a member rejected."""
    rows = []
    for i in range(12):
        rows.append(chat(f"customer {i} reports problem number {i} with the billing export screen", label="P2"))
    for i in range(3):  # the same ticket under another system prompt: a duplicate the import cannot drop
        copy = chat(f"Customer {i} reports problem number {i} with the billing export screen", label="P2")
        copy["messages"][0]["content"] = "You are a support agent (second prompt)."
        rows.append(copy)
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    examples = list(Example.objects.filter(project=project).order_by("id"))
    originals, copies = examples[:3], examples[12:]
    Example.objects.filter(pk__in=[originals[0].pk, copies[0].pk]).update(status="approved")
    Example.objects.filter(pk=copies[2].pk).update(status="rejected")
    scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
    return scan, originals, copies


def test_one_count_everywhere(project, clustered, lead, lead_api):
    scan, originals, copies = clustered
    body = lead_api.get(f"/api/v1/projects/{project.slug}/duplicates/").json()
    assert (body["count"], body["examples"]) == (2, 4)
    assert {c["cluster_id"] for c in body["results"]} == {originals[0].pk, originals[1].pk}
    pending = next(c for c in body["results"] if c["cluster_id"] == originals[1].pk)
    assert [m["status"] for m in pending["examples"]] == ["pending", "pending"]  # visible before anyone approves
    assert (scan.clusters, scan.clustered_examples) == (2, 4)
    checks = {c["id"]: c for c in lead_api.get(f"/api/v1/projects/{project.slug}/readiness/").json()["checks"]}
    assert checks["duplicates"]["passed"] is False and checks["duplicates"]["detail"].startswith("2 clusters")
    stats = lead_api.get(f"/api/v1/projects/{project.slug}/stats/").json()
    assert stats["duplicates"] == {"clusters": 2, "examples": 4} and stats["scan"]["clusters"] == 2
    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert "<strong>2</strong> exact or near-duplicate clusters now, holding 4 examples" in page
    assert f'data-cluster="{originals[1].pk}"' in page

    # Resolving a cluster takes it out of every count at once.
    services.duplicates_resolve(project=project, cluster_id=originals[1].pk, keep_id=originals[1].pk, user=lead)
    assert selectors.duplicate_cluster_totals(project=project) == {"clusters": 1, "examples": 2}
    assert lead_api.get(f"/api/v1/projects/{project.slug}/duplicates/").json()["count"] == 1
    checks = {c["id"]: c for c in lead_api.get(f"/api/v1/projects/{project.slug}/readiness/").json()["checks"]}
    assert checks["duplicates"]["detail"].startswith("1 clusters")


def test_the_duplicates_api_pages_with_a_total(project, clustered, lead_api, outsider_api):
    _, originals, _ = clustered
    url = f"/api/v1/projects/{project.slug}/duplicates/"
    first = lead_api.get(url + "?limit=1").json()
    assert first["count"] == 2 and len(first["results"]) == 1 and first["previous"] is None
    second = lead_api.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    seen = {first["results"][0]["cluster_id"], second["results"][0]["cluster_id"]}
    assert seen == {originals[0].pk, originals[1].pk}
    assert all(c["size"] == 2 for c in first["results"] + second["results"])
    assert outsider_api.get(url).status_code == 404
