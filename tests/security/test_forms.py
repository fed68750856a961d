"""Every HTML form the pages render, found by crawling them as the lead: an expert posting a lead-only form gets 403,
an outsider 404, and hostile values in any field ("abc" for an id, nan, a 300-character label...) give a 4xx or a
page with the error, never a 500. tests/config/test_access.py walks the URL conf; this walks what users are shown."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest

from curation.models import Example
from evaluation.models import Evaluation, PromptVariant
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

# Forms an expert may post (reviewing, editing, restoring, logging out); every other form on a project's pages is a
# lead's. Matched on the action's path with the ids taken out.
EXPERT_FORMS = {"review", "draft", "check", "render", "release", "restore", "submit", "logout", "next"}
HOSTILE = ["abc", "²", "nan", "inf", "-1", "1e309", "", "x" * 300, "99999999999999999999", "../../etc/passwd"]


class Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self.links, self._form = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "form":
            self._form = {"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower()}
            self._form["fields"] = {}
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form is not None and attrs.get("name"):
            self._form["fields"][attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


@pytest.fixture
def pages(project, version, lead, client):
    """Every page of the project a lead reaches by links, and the POST forms on them."""
    example = Example.objects.filter(project=project).order_by("id").first()
    Example.objects.filter(pk=example.pk).update(cluster_id=example.pk, disputed=True)
    run = TrainingRun.objects.create(project=project, dataset_version=version, base_model="tiny-local")
    Evaluation.objects.create(project=project, training_run=run, dataset_version=version)
    PromptVariant.objects.create(project=project, name="v1", system_prompt="Be brief.")
    client.force_login(lead)
    queue, seen, forms, shapes = ["/", f"/projects/{project.slug}/"], set(), {}, set()
    while queue and len(seen) < 80:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        parser = Forms()
        parser.feed(response.content.decode())
        for form in parser.forms:
            action = urlparse(urljoin(path, form["action"] or path)).path
            shape = re.sub(r"/\d+/", "/N/", action)  # one form of each kind, not one per example
            if form["method"] == "post" and project.slug in action and shape not in shapes:
                shapes.add(shape)
                forms[action] = form["fields"]
        for href in parser.links:
            url = urlparse(urljoin(path, href))
            target = url.path + (f"?{url.query}" if url.query else "")
            if not url.netloc and url.path.startswith(f"/projects/{project.slug}/") and "export" not in url.path:
                queue.append(target)
    assert len(seen) > 15 and len(forms) > 8, (seen, forms)
    return project, forms


def lead_only(action: str) -> bool:
    words = {part for part in action.strip("/").split("/") if not part.isdigit()}
    return not words & EXPERT_FORMS


def test_an_expert_posting_a_lead_only_form_gets_403_and_an_outsider_404(pages, client, expert, outsider):
    project, forms = pages
    wrong = []
    for action, fields in forms.items():
        client.force_login(outsider)
        if (code := client.post(action, fields).status_code) != 404:
            wrong.append(("outsider", action, code))
        if lead_only(action):
            client.force_login(expert)
            if (code := client.post(action, fields).status_code) != 403:
                wrong.append(("expert", action, code))
    print(f"\n{len(forms)} forms; {sum(map(lead_only, forms))} lead-only")
    assert not wrong, wrong


def test_hostile_values_in_any_field_never_give_a_500(pages, client, lead):
    project, forms = pages
    client.force_login(lead)
    client.raise_request_exception = False
    errors = []
    posts = 0
    for action, fields in forms.items():
        for name in fields:
            for value in HOSTILE:
                posts += 1
                response = client.post(action, {**fields, name: value})
                if response.status_code >= 500:
                    errors.append((action, name, value[:20], response.status_code))
    for path in [f"/projects/{project.slug}/prompts/?edit=abc", f"/projects/{project.slug}/evaluations/?page=abc"]:
        if client.get(path).status_code >= 500:
            errors.append(("GET", path))
    print(f"\n{posts} hostile posts to {len(forms)} forms")
    assert not errors, "\n".join(map(str, errors))


@pytest.mark.parametrize(
    "value, expected",
    [("12", 12), ("0", 0), ("²", None), ("١٢", None), ("-1", None), ("", None), (None, None), ("9" * 19, None)],
)
def test_a_form_integer_is_ascii_digits_that_fit_a_bigint(value, expected):
    from core.params import form_int

    assert form_int(value) == expected
