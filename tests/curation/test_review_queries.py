"""How many queries a review round costs, whatever the project's size and review settings: "next" (a reload, and
the n key that skips ahead) and "submit and claim the next" each stay within REVIEW_ROUND_QUERIES SQL statements (the
user's included; the transaction's BEGIN and COMMIT are not counted), so a later change cannot creep back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.models import Example

from ..helpers import chat, jsonl, post_jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]

REVIEW_ROUND_QUERIES = 8


def _queue(project, lead_api, count: int):
    rows = [chat(f"Ticket {i}: the export fails for user {i}", answer="SEVERITY: P3\nIMPACT: one user\nACTION: look")
            for i in range(count)]  # fmt: skip
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201


def _shown(page) -> int:
    assert page.status_code == 200
    return int(page.content.decode().split('data-example="', 1)[1].split('"', 1)[0])


def _round(client, project, edit: bool):
    """One "next" (GET: the queue's current example), one "n" (skip ahead) and, on the example it gave, one "approve
    and next" (POST), as htmx sends them. Returns the statements of each."""
    headers = {"HX-Request": "true"}
    with CaptureQueriesContext(connection) as next_queries:
        current = _shown(client.get(f"/projects/{project.slug}/review/", headers=headers))
    with CaptureQueriesContext(connection) as skip_queries:
        shown = _shown(client.get(f"/projects/{project.slug}/review/?after={current}", headers=headers))
    assert shown != current
    example = Example.objects.get(pk=shown)
    body = {"decision": "approved", "version": example.version, "label": "P3", "tags": ""}
    for index, message in enumerate(example.messages):
        body.update({f"role_{index}": message["role"], f"content_{index}": message["content"]})
    if edit:  # the expert edits the answer: a new content hash, search vector and revision
        body[f"content_{len(example.messages) - 1}"] += " (checked)"
    with CaptureQueriesContext(connection) as submit_queries:
        answer = client.post(f"/projects/{project.slug}/examples/{shown}/submit/", body, headers=headers)
    assert answer.status_code == 200, [line for line in answer.content.decode().splitlines() if "error" in line][:5]
    return [_statements(queries) for queries in (next_queries, skip_queries, submit_queries)]


def _statements(queries) -> list[str]:
    """The SQL statements sent, transaction control left out."""
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [query["sql"] for query in queries.captured_queries if not query["sql"].strip().upper().startswith(control)]


def _explain(statements) -> str:
    return "\n".join(f"{i + 1}. {sql.strip()[:300]}" for i, sql in enumerate(statements))


@pytest.mark.parametrize("reviews_required", [1, 2])
def test_a_review_round_costs_a_handful_of_queries(project, lead_api, expert, client, reviews_required):
    project.reviews_required = reviews_required
    project.save(update_fields=["reviews_required"])
    _queue(project, lead_api, 30)
    client.force_login(expert)
    _round(client, project, edit=False)  # the first round warms what is cached for the session
    for number in range(4):
        for statements in _round(client, project, edit=number % 2 == 1):
            print("COUNT", len(statements))
            assert len(statements) <= REVIEW_ROUND_QUERIES, _explain(statements)
