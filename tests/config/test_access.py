"""Access, generated from the URL conf: a member of another project gets 404 from every page, fragment and API
endpoint of this one (its existence does not leak), and an expert gets 403 from every lead-only action."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from curation.models import Example, ImportJob
from evaluation.models import Evaluation, GenerationJob, PromptVariant
from training.models import ChatReply, TrainingRun

pytestmark = pytest.mark.django_db
METHODS = ["get", "post", "put", "patch", "delete"]
# What an expert may do besides reading: review, edit and restore examples, rate evaluation answers. Everything else
# that writes is a lead's.
EXPERT_WRITES = {
    ("review_submit", "post"),
    ("review_draft", "post"),
    ("review_draft", "delete"),
    ("review_check", "post"),
    ("review_render", "post"),
    ("review_release", "post"),
    ("example_restore", "post"),
    ("example-detail", "patch"),
    ("example-detail", "put"),
    # Rating an evaluation's answers blind (what the judge is checked against): experts and leads alike.
    ("evaluation_rate", "post"),
    ("evaluation-ratings", "post"),
}
# Pages and reads only a lead sees.
LEAD_READS = {
    ("disagreements", "get"),
    ("run_chat", "get"),
    ("run_chat_reply", "get"),
    ("training-run-chat-detail", "get"),
}


def project_routes():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.name

    for route, name in walk(get_resolver().url_patterns):
        if "slug" in route and "format" not in route:
            yield route, name


@pytest.fixture
def other(project, lead, version, make_user):
    """Everything project `triage` holds, one of each, for the routes' ids."""
    example = Example.objects.filter(project=project).order_by("id").first()
    Example.objects.filter(pk=example.pk).update(cluster_id=example.pk)
    run = TrainingRun.objects.create(project=project, dataset_version=version, base_model="tiny-local")
    ids = {
        "examples": example.pk,
        "runs": run.pk,
        "training-runs": run.pk,
        "evaluations": Evaluation.objects.create(project=project, training_run=run, dataset_version=version).pk,
        "imports": ImportJob.objects.filter(project=project).first().pk,
        "dataset-versions": version.pk,
        "versions": version.pk,
        "prompt-variants": PromptVariant.objects.create(project=project, name="v").pk,
        "generate": GenerationJob.objects.create(project=project, label="P1", count=1, source="frontier").pk,
        "cluster_id": example.pk,
        "version": 1,
        "name": "adapter",
        "reply": ChatReply.objects.create(run=run, messages=[{"role": "user", "content": "hi"}]).pk,
    }
    return project, ids


def url_for(route: str, slug: str, ids: dict) -> str:
    route = route.replace("(?P<slug>[^/.]+)", slug).replace("<slug:slug>", slug).replace("^", "").replace("$", "")

    def fill(match):
        name = match.group(1)
        if name == "pk":
            owner = route[: match.start()].rstrip("/").rsplit("/", 1)[-1]
            return str(ids[owner])
        return str(ids[name])

    return "/" + re.sub(r"<(?:int|slug):(\w+)>", fill, route)


def call(client, method: str, url: str, api: bool):
    if api:
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url)


def test_every_route_of_another_project_is_a_404(other, client, outsider_api, outsider):
    project, ids = other
    client.force_login(outsider)
    checked = leaks = 0
    seen = []
    for route, _name in project_routes():
        api = route.startswith("api/")
        url = url_for(route, project.slug, ids)
        for method in METHODS:
            response = call(outsider_api if api else client, method, url, api)
            if response.status_code == 405:
                continue
            checked += 1
            if response.status_code != 404:
                leaks += 1
                seen.append((method.upper(), url, response.status_code))
    print(f"\n{checked} calls of an outsider, {leaks} leaks")
    assert checked > 60 and leaks == 0, seen


def test_an_expert_cannot_do_what_only_a_lead_may(other, client, expert, expert_api):
    project, ids = other
    client.force_login(expert)
    allowed, wrong = [], []
    for route, name in project_routes():
        api = route.startswith("api/")
        url = url_for(route, project.slug, ids)
        for method in METHODS:
            response = call(expert_api if api else client, method, url, api)
            code = response.status_code
            if code == 405:
                continue
            lead_only = (method != "get" and (name, method) not in EXPERT_WRITES) or (name, method) in LEAD_READS
            if lead_only and code != 403:
                wrong.append((method.upper(), url, code))
            if not lead_only:
                allowed.append((method.upper(), url, code))
    print(f"\n{len(allowed)} expert calls allowed, lead-only refused: every other write")
    assert not wrong, wrong
    assert all(code < 500 for _, _, code in allowed), allowed
    assert all(code != 403 for _, _, code in allowed if _ == "GET"), allowed
