"""Bulk actions of a lead: set-based, recorded as reviews and revisions by the lead, with counts; open editors get a
conflict, examples an expert is reviewing are left alone; over the API and from the browse page."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from curation import bulk, selectors, services
from curation.models import Example, Review, ReviewStatus, Revision

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def load(project, lead_api, count: int, **row) -> list[Example]:
    rows = [chat(f"question number {i} about the export", **row) for i in range(count)]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    return list(Example.objects.filter(project=project).order_by("id"))


def counters_agree(project) -> bool:
    counted = selectors.project_status_counts(project=project)
    actual = {}
    for status in Example.objects.filter(project=project).values_list("status", flat=True):
        actual[status] = actual.get(status, 0) + 1
    return counted == actual


def test_approving_by_filter_records_the_leads_reviews_and_revisions(project, lead, lead_api):
    examples = load(project, lead_api, 12, label="P2")
    services.example_review(example=examples[0], reviewer=lead, version=1, decision="approved", label="P2")
    result = bulk.examples_bulk(project=project, user=lead, action="approve", filters={"label": "P2"})
    assert result == {"matched": 12, "changed": 11, "unchanged": 1, "skipped_locked": 0, "skipped_no_label": 0}
    assert set(Example.objects.filter(project=project).values_list("status", flat=True)) == {"approved"}
    example = Example.objects.get(pk=examples[5].pk)
    assert (example.version, example.review_count, example.locked_by_id) == (2, 1, None)
    history = list(Revision.objects.filter(example=example).order_by("version").values_list("version", "kind"))
    assert history == [(1, "import"), (2, "review")]  # the imported state is kept before the first change
    latest = Revision.objects.get(example=example, version=2)
    assert (latest.author, latest.status, latest.label) == (lead, "approved", "P2")
    assert "Bulk approve" in latest.comment
    review = Review.objects.get(example=example)
    assert (review.reviewer, review.decision, review.label, review.example_version) == (lead, "approved", "P2", 2)
    assert Review.objects.filter(reviewer=lead).count() == 12  # one each, the earlier one not doubled
    assert counters_agree(project)
    assert services.review_queue_next(project=project, reviewer=lead) is None


def test_the_same_few_statements_for_ten_or_a_hundred_examples(project, lead, lead_api):
    load(project, lead_api, 110, label="P3")
    ids = list(Example.objects.filter(project=project).order_by("id").values_list("id", flat=True))

    def statements(picked):
        with CaptureQueriesContext(connection) as captured:
            result = bulk.examples_bulk(project=project, user=lead, action="reject", ids=picked)
        assert result["changed"] == len(picked)
        return len(captured.captured_queries)

    assert statements(ids[:10]) == statements(ids[10:]) <= 12


def test_an_expert_holding_an_example_keeps_it_and_an_open_editor_gets_a_conflict(project, lead, expert, lead_api):
    examples = load(project, lead_api, 4, label="P4")
    held = services.review_queue_next(project=project, reviewer=expert)
    assert held.pk == examples[0].pk
    result = bulk.examples_bulk(project=project, user=lead, action="set_label", label="P1", filters={})
    assert result == {"matched": 4, "changed": 3, "unchanged": 0, "skipped_locked": 1, "skipped_no_label": 0}
    assert Example.objects.get(pk=held.pk).label == "P4"
    # Someone read example 2 at version 1 before the lead's change: saving it now is a conflict, not an overwrite.
    with pytest.raises(services.VersionConflict):
        services.example_update(example=examples[1], user=expert, version=1, changes={"label": "P2"})
    response = lead_api.patch(
        f"/api/v1/projects/{project.slug}/examples/{examples[1].pk}/", {"version": 1, "label": "P2"}, format="json"
    )
    assert response.status_code == 409 and response.json()["current"]["label"] == "P1"
    assert counters_agree(project)


def test_approving_unlabelled_examples_needs_a_label(project, lead, lead_api):
    load(project, lead_api, 3)
    result = bulk.examples_bulk(project=project, user=lead, action="approve", filters={"status": "pending"})
    assert result == {"matched": 3, "changed": 0, "unchanged": 0, "skipped_locked": 0, "skipped_no_label": 3}
    result = bulk.examples_bulk(project=project, user=lead, action="approve", filters={}, label="P3")
    assert result["changed"] == 3
    assert set(Example.objects.filter(project=project).values_list("status", "label")) == {("approved", "P3")}


def test_tags_and_sending_back_to_review(project, lead, expert, lead_api):
    examples = load(project, lead_api, 5, label="P2")
    for example in examples[:3]:
        services.example_review(example=example, reviewer=expert, version=1, decision="approved", label="P2")
    ids = [e.pk for e in examples]
    assert bulk.examples_bulk(project=project, user=lead, action="add_tag", tag="billing", ids=ids[:2])["changed"] == 2
    again = bulk.examples_bulk(project=project, user=lead, action="add_tag", tag="billing", ids=ids)
    assert (again["changed"], again["unchanged"]) == (3, 2)
    assert all(Example.objects.get(pk=pk).tags == ["billing"] for pk in ids)
    sent = bulk.examples_bulk(project=project, user=lead, action="send_to_review", tag="recheck", ids=ids)
    assert (sent["changed"], sent["unchanged"]) == (5, 0)
    back = Example.objects.get(pk=ids[0])
    assert (back.status, back.review_round, back.review_count, back.tags) == ("pending", 1, 0, ["billing", "recheck"])
    assert Review.objects.filter(example_id=ids[0]).count() == 1  # the earlier round's review is kept
    resent = bulk.examples_bulk(project=project, user=lead, action="send_to_review", tag="recheck", ids=ids)
    assert (resent["changed"], resent["unchanged"]) == (0, 5)  # already waiting for a first review
    assert services.review_queue_next(project=project, reviewer=expert).pk == ids[0]
    assert counters_agree(project)


def test_bad_requests_change_nothing(project, lead, lead_api):
    load(project, lead_api, 2, label="P2")
    for arguments in (
        {"action": "delete", "filters": {}},
        {"action": "approve"},
        {"action": "approve", "ids": [1], "filters": {}},
        {"action": "set_label", "label": "P9", "filters": {}},
        {"action": "set_label", "filters": {}},
        {"action": "add_tag", "filters": {}},
        {"action": "approve", "filters": {"lable": "P2"}},
        {"action": "approve", "filters": {"status": "maybe"}},
    ):
        with pytest.raises(services.ServiceError):
            bulk.examples_bulk(project=project, user=lead, **arguments)
    assert not Example.objects.filter(project=project).exclude(status="pending").exists()


def test_the_bulk_endpoint_is_for_leads_and_answers_with_counts(
    project, lead_api, expert_api, outsider_api, lead, expert
):
    examples = load(project, lead_api, 6, label="P2")
    url = f"/api/v1/projects/{project.slug}/examples/bulk/"
    body = {"action": "approve", "filter": {"status": "pending", "q": "export"}}
    assert expert_api.post(url, body, format="json").status_code == 403
    assert outsider_api.post(url, body, format="json").status_code == 404
    assert not Example.objects.filter(project=project, status="approved").exists()
    response = lead_api.post(url, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "action": "approve",
        "matched": 6,
        "changed": 6,
        "unchanged": 0,
        "skipped_locked": 0,
        "skipped_no_label": 0,
    }
    response = lead_api.post(url, {"action": "reject", "ids": [examples[0].pk, examples[1].pk, 10**9]}, format="json")
    assert response.json()["matched"] == 2 and response.json()["changed"] == 2
    assert Example.objects.get(pk=examples[0].pk).status == "rejected"
    for bad in (
        {"action": "approve", "filter": {"lable": "P2"}},
        {"action": "approve"},
        {"action": "approve", "ids": [1], "filter": {}},
        {"action": "explode", "ids": [1]},
        {"action": "set_label", "label": "P9", "ids": [examples[2].pk]},
    ):
        response = lead_api.post(url, bad, format="json")
        assert response.status_code == 400, (bad, response.json())
    assert Example.objects.filter(project=project, status="approved").count() == 4


def test_a_lead_acts_on_all_matching_examples_from_the_browse_page(project, lead, expert, lead_api):
    examples = load(project, lead_api, 8, label="P4")
    services.example_review(example=examples[0], reviewer=expert, version=1, decision="rejected", label="P4")
    client = Client()
    client.force_login(lead)
    list_url = reverse("curation:example_list", kwargs={"slug": project.slug})
    page = client.get(list_url + "?status=pending").content.decode()
    assert 'data-bulk-matching="7"' in page and 'name="ids"' in page and "Send to review" in page
    response = client.post(
        reverse("curation:example_bulk", kwargs={"slug": project.slug}),
        {"scope": "filter", "query": "status=pending", "action": "approve"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == list_url + "?status=pending"
    assert "Approve: 7 matched, 7 changed, 0 unchanged." in response.content.decode()
    assert Example.objects.filter(project=project, status="approved").count() == 7
    assert Example.objects.get(pk=examples[0].pk).status == "rejected"
    response = client.post(
        reverse("curation:example_bulk", kwargs={"slug": project.slug}),
        {"scope": "ids", "ids": [examples[1].pk, examples[2].pk], "action": "add_tag", "tag": "checked"},
        follow=True,
    )
    assert "Add tag: 2 matched, 2 changed" in response.content.decode()
    assert sorted(e.pk for e in Example.objects.filter(project=project) if "checked" in e.tags) == [
        examples[1].pk,
        examples[2].pk,
    ]

    expert_client = Client()
    expert_client.force_login(expert)
    assert 'name="ids"' not in expert_client.get(list_url).content.decode()
    forbidden = expert_client.post(
        reverse("curation:example_bulk", kwargs={"slug": project.slug}), {"scope": "filter", "action": "reject"}
    )
    assert forbidden.status_code == 403
    assert not Example.objects.filter(project=project, status=ReviewStatus.REJECTED).exclude(pk=examples[0].pk).exists()


def test_the_browse_page_counts_what_a_bulk_action_takes_without_scanning_examples(project, lead, expert, lead_api):
    """Filters the counters count by (status, label, format) read the count from them, whatever the project's size;
    any other filter (words, tags) shows the page at once and asks for the count afterwards."""
    examples = load(project, lead_api, 9, label="P4")
    assert post_jsonl(lead_api, project.slug, jsonl([chat(f"a P1 question {i}", label="P1") for i in range(3)]))
    services.example_review(example=examples[0], reviewer=lead, version=1, decision="rejected", label="P4")
    client = Client()
    client.force_login(lead)
    list_url = reverse("curation:example_list", kwargs={"slug": project.slug})
    for query, matching in [("", 12), ("?status=pending&label=P4", 8), ("?label=P1", 3), ("?format=unchecked", 12),
                            ("?format=nonsense", 12), ("?status=rejected&format=ok", 0)]:  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            page = client.get(list_url + query).content.decode()
        assert f'data-bulk-matching="{matching}"' in page, query
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert not any("curation_example" in sql.split("FROM")[1].split()[0] for sql in counts), counts

    page = client.get(list_url + "?q=question+number").content.decode()
    count_url = reverse("curation:example_count", kwargs={"slug": project.slug}) + "?q=question+number"
    assert 'data-bulk-matching=""' in page and f'hx-get="{count_url}"' in page
    assert '<strong data-bulk-matching="9">9</strong>' in client.get(count_url).content.decode()
    tagged = client.get(reverse("curation:example_count", kwargs={"slug": project.slug}) + "?tag=none").content
    assert b'data-bulk-matching="0"' in tagged
    expert_client = Client()
    expert_client.force_login(expert)
    assert expert_client.get(count_url).status_code == 403


def test_the_browse_page_shows_long_examples_cut_without_reading_their_messages(project, lead, lead_api):
    """Each row shows the user's turns cut to 110 characters; the page's query cuts them, never fetching messages."""
    long_turn = "word " * 4000  # 20,000 characters
    row = chat(long_turn)
    row["messages"].insert(3, {"role": "user", "content": "And a short follow-up <b>here</b>."})
    row["messages"].insert(4, {"role": "assistant", "content": "SEVERITY: P4\nIMPACT: none\nACTION: reply"})
    assert post_jsonl(lead_api, project.slug, jsonl([row, chat("a short one")])).status_code == 201
    client = Client()
    client.force_login(lead)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("curation:example_list", kwargs={"slug": project.slug})).content.decode()
    cut = ("word " * 22)[:109] + "…"
    assert f'<td class="excerpt">{cut}And a short follow-up &lt;b&gt;here&lt;/b&gt;.</td>' in page
    assert '<td class="excerpt">a short one</td>' in page
    rows = next(q["sql"] for q in captured.captured_queries if 'AS "disputed"' in q["sql"])
    assert '"curation_example"."messages" AS' not in rows and "word word" not in page.split(cut)[1]
    link = reverse("curation:review_example", kwargs={"slug": project.slug, "pk": Example.objects.first().pk})
    assert f'href="{link}"' in page


def test_the_browse_page_speaks_of_texts_not_tickets(project, lead, lead_api):
    load(project, lead_api, 1, label="P4")
    client = Client()
    client.force_login(lead)
    page = client.get(reverse("curation:example_list", kwargs={"slug": project.slug})).content.decode()
    assert "<th>Text</th>" in page and "Ticket" not in page
