"""The Content-Security-Policy (django-csp): every page sends it, and Chromium, crawling every page a lead can reach
by links from the project list (the API docs and the admin included), reports no violation: no inline script or
style slipped in."""

import re
from urllib.parse import urljoin, urlparse

import pytest

from curation import services
from curation.models import Example

from ..browser_helpers import log_in
from ..helpers import chat, jsonl, post_jsonl

SKIP = re.compile(r"/(logout|export|download|errors)/|\?.*format=|/api/v1/|/api/schema/")


def test_every_response_carries_the_policy(client, lead):
    client.force_login(lead)
    for url in ("/", "/login/", "/api/docs/", "/admin/"):
        policy = client.get(url, follow=True).headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_a_lead_reaches_breaks_the_policy(browser, live_server, project, lead, lead_api, make_user):
    post_jsonl(lead_api, project.slug, jsonl([chat(f"ticket {n}") for n in range(5)]))
    lead.is_staff = lead.is_superuser = True
    lead.save()
    Example.objects.filter(project=project).update(status="approved")
    services.dataset_version_freeze(project=project, user=lead, train=0.6, val=0.2, test=0.2, seed=1)
    context = browser.new_context()
    violations = []
    context.on(
        "page",
        lambda page: page.on(
            "console",
            lambda message: violations.append((page.url, message.text)) if "Content Security" in message.text else None,
        ),
    )
    page = log_in(context, live_server.url, "lena", "pw-lena")
    page.on("console", lambda m: violations.append((page.url, m.text)) if "Content Security" in m.text else None)
    host = urlparse(live_server.url).netloc
    queue, seen = ["/", "/api/docs/", "/admin/"], set()
    while queue and len(seen) < 40:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        page.goto(urljoin(live_server.url, path))
        page.wait_for_load_state("networkidle")
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            url = urlparse(href)
            target = url.path + (f"?{url.query}" if url.query else "")
            if url.netloc == host and not SKIP.search(target) and target not in seen:
                queue.append(target)
    print(f"\n{len(seen)} pages crawled, {len(violations)} CSP violations")
    assert len(seen) > 10
    assert not violations, violations[:10]
