"""20 threads doing read-modify-write on one example through the API: no write is ever lost or silently overwritten."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from knox.models import AuthToken

from curation.models import Example, Revision

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Authorization", f"Token {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_twenty_writers_on_one_example(live_server, project, lead, lead_api):
    post_jsonl(lead_api, project.slug, jsonl([chat("the shared ticket")]))
    example = Example.objects.get()
    token = AuthToken.objects.create(user=lead)[1]
    target = f"{live_server.url}/api/v1/projects/{project.slug}/examples/{example.pk}/"
    accepted, refused, errors = [], [], []
    barrier = threading.Barrier(20)

    def writer(number: int):
        for attempt in range(5):
            status, current = call("GET", target, token)
            tags = current["tags"] + [f"w{number}-{attempt}"]
            if attempt == 0:
                barrier.wait()  # the first round of writes all start together
            status, body = call("PATCH", target, token, {"version": current["version"], "tags": tags})
            if status == 200:
                accepted.append((body["version"], f"w{number}-{attempt}"))
            elif status == 409:
                refused.append(body["current"]["version"])
            else:
                errors.append((status, body))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(accepted) + len(refused) == 100 and accepted and refused
    example.refresh_from_db()
    assert example.version == 1 + len(accepted)
    history = {r.version: r.tags for r in Revision.objects.filter(example=example, kind="edit")}
    # Every accepted write is a revision holding exactly the tag it added, on top of all earlier accepted ones.
    assert sorted(history) == sorted(version for version, _ in accepted)
    for version, tag in accepted:
        assert tag in history[version]
    assert set(example.tags) == {tag for _, tag in accepted}
