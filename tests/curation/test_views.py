"""The browser pages through Django's test client: review flow, conflicts, drafts, access, escaping, CSRF."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from curation import services
from curation.models import Draft, Example, Review

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def examples(project, lead_api):
    rows = [chat(f"ticket {i}", label="P4") for i in range(4)]
    rows.append(chat("<script>alert('x')</script> & friends", label="P4"))
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    return list(Example.objects.filter(project=project).order_by("id"))


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_for(example, decision="approved", label="P2", **overrides):
    data = {"version": example.version, "decision": decision, "label": label, "comment": ""}
    for index, message in enumerate(example.messages):
        data[f"role_{index}"] = message["role"]
        data[f"content_{index}"] = message["content"]
    data.update(overrides)
    return data


def url(name, project, example=None, **kwargs):
    kwargs = {"slug": project.slug, **({"pk": example.pk} if example else {}), **kwargs}
    return reverse(f"curation:{name}", kwargs=kwargs)


def test_the_queue_shows_an_example_and_the_submit_brings_the_next(project, examples, expert):
    client = login(expert)
    page = client.get(url("review_next", project))
    assert page.status_code == 200
    assert f"#{examples[0].pk}" in page.content.decode() and "0 / 5 reviewed" in page.content.decode()
    answer = "SEVERITY: P2\nIMPACT: A team\nACTION: Escalate"
    data = form_for(examples[0], content_2=answer, edge_case="1", tags="billing")
    response = client.post(url("review_submit", project, examples[0]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'data-example="{examples[1].pk}"' in response.content.decode()
    assert response["HX-Push-Url"] == url("review_example", project, examples[1])
    done = Example.objects.get(pk=examples[0].pk)
    assert (done.status, done.label, done.tags) == ("approved", "P2", ["edge_case", "billing"])
    assert done.messages[2]["content"] == answer


def test_a_stale_submit_is_a_409_showing_both_versions(project, examples, expert, lead):
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    stale = form_for(examples[0], content_2="SEVERITY: P3\nIMPACT: mine\nACTION: mine")
    services.review_lock_release(
        example=examples[0], reviewer=expert, token=Example.objects.get(pk=examples[0].pk).lock_token
    )
    services.example_update(example=examples[0], user=lead, version=1, changes={"label": "P1"}, comment="theirs")
    response = client.post(url("review_submit", project, examples[0]), stale, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    body = response.content.decode()
    assert "Edited by lena" in body and "data-theirs" in body and "IMPACT: mine" in body
    assert 'name="version" value="2"' in body  # "keep mine" and "merge" submit against the current version
    example = Example.objects.get(pk=examples[0].pk)
    assert (example.label, example.status, example.version) == ("P1", "pending", 2)


def test_a_colleagues_example_is_read_only(project, examples, expert, make_user):
    colleague = make_user("alex")
    services.membership_set(project=project, user=colleague, role="expert")
    held = services.review_queue_next(project=project, reviewer=colleague)
    client = login(expert)
    page = client.get(url("review_example", project, held)).content.decode()
    assert "alex is reviewing this example" in page and "disabled" in page
    response = client.post(url("review_submit", project, held), form_for(held), HTTP_HX_REQUEST="true")
    assert response.status_code == 409 and not Review.objects.exists()


def test_approving_without_a_label_is_a_422_that_keeps_the_edit(project, examples, expert):
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    data = form_for(examples[0], label="", content_2="SEVERITY: P2\nIMPACT: kept\nACTION: kept")
    response = client.post(url("review_submit", project, examples[0]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "choose a label" in response.content.decode() and "IMPACT: kept" in response.content.decode()


def test_drafts_are_kept_and_restored(project, examples, expert):
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    data = form_for(examples[0], content_2="SEVERITY: half-written")
    assert client.post(url("review_draft", project, examples[0]), data, HTTP_HX_REQUEST="true").status_code == 200
    assert Draft.objects.get().messages[2]["content"] == "SEVERITY: half-written"
    page = client.get(url("review_example", project, examples[0])).content.decode()
    assert "Draft restored" in page and "SEVERITY: half-written" in page
    assert "line 1, column 11 does not fit the format" in page  # the restored answer is checked too


def test_the_format_check_speaks_in_words(project, examples, expert):
    client = login(expert)
    response = client.post(
        url("review_check", project, examples[0]),
        {"field": "content_2", "content_2": "SEVERITY: P9\nIMPACT: x"},
        HTTP_HX_REQUEST="true",
    )
    assert "line 1, column 12 does not fit the format" in response.content.decode()


def test_content_is_escaped(project, examples, expert):
    page = login(expert).get(url("review_example", project, examples[4])).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in page


def test_csrf_is_enforced_on_every_form(project, examples, expert):
    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    response = client.post(url("review_submit", project, examples[0]), form_for(examples[0]))
    assert response.status_code == 403
    page = client.get(url("review_example", project, examples[0])).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


def test_a_non_member_gets_404_on_every_page_and_fragment(project, examples, outsider):
    client = login(outsider)
    example = examples[0]
    gets = [
        url("project_detail", project),
        url("review_next", project),
        url("example_list", project),
        url("review_example", project, example),
        url("example_history", project, example),
        url("disagreements", project),
    ]
    posts = [
        url("review_submit", project, example),
        url("review_draft", project, example),
        url("review_check", project, example),
        url("review_release", project, example),
        url("adjudicate", project, example),
        url("project_settings", project),
        url("example_restore", project, example, version=1),
    ]
    for target in gets:
        assert client.get(target, HTTP_HX_REQUEST="true").status_code == 404, target
    for target in posts:
        assert client.post(target, {"version": 1}).status_code == 404, target
    assert not Review.objects.exists()


def test_lead_only_pages(project, examples, expert, lead):
    assert login(expert).get(url("disagreements", project)).status_code == 403
    assert login(expert).post(url("project_settings", project), {"reviews_required": 2}).status_code == 403
    assert login(lead).post(url("project_settings", project), {"reviews_required": 2}).status_code == 302
    project.refresh_from_db()
    assert project.reviews_required == 2


def test_example_list_filters_in_the_url(project, examples, expert):
    client = login(expert)
    client.post(url("review_submit", project, examples[0]), form_for(examples[0]))
    page = client.get(url("example_list", project) + "?status=approved", HTTP_HX_REQUEST="true").content.decode()
    assert f">{examples[0].pk}</a>" in page and f">{examples[1].pk}</a>" not in page
    by_reviewer = client.get(url("example_list", project) + "?reviewer=maria").content.decode()
    assert f">{examples[0].pk}</a>" in by_reviewer and '<form class="filters"' in by_reviewer
    words = client.get(url("example_list", project) + "?q=friends", HTTP_HX_REQUEST="true").content.decode()
    assert f">{examples[4].pk}</a>" in words and f">{examples[1].pk}</a>" not in words


def test_history_and_restore(project, examples, expert):
    client = login(expert)
    client.post(url("review_submit", project, examples[0]), form_for(examples[0], content_2="SEVERITY: P2\nnew"))
    page = client.get(url("example_history", project, examples[0])).content.decode()
    assert "Version 2" in page and "+ SEVERITY: P2" in page
    response = client.post(url("example_restore", project, examples[0], version=1), {"version": 2})
    assert response.status_code == 302
    restored = Example.objects.get(pk=examples[0].pk)
    assert (restored.version, restored.messages) == (3, examples[0].messages)


def test_the_lead_settles_disagreements(project, examples, expert, lead, make_user):
    colleague = make_user("alex")
    services.membership_set(project=project, user=colleague, role="expert")
    services.project_update(project=project, reviews_required=2)
    example = examples[0]
    login(expert).post(url("review_submit", project, example), form_for(example, label="P2"))
    example.refresh_from_db()
    login(colleague).post(url("review_submit", project, example), form_for(example, label="P3"))
    lead_client = login(lead)
    page = lead_client.get(url("disagreements", project)).content.decode()
    assert f'data-example="{example.pk}"' in page and "maria: approve as <strong>P2</strong>" in page
    dashboard = lead_client.get(url("project_detail", project)).content.decode()
    assert "Disagreements (1)" in dashboard
    example.refresh_from_db()
    lead_client.post(
        url("adjudicate", project, example), {"version": example.version, "decision": "approved", "label": "P3"}
    )
    example.refresh_from_db()
    assert (example.status, example.label, example.disputed) == ("approved", "P3", False)


def test_reloading_the_queue_shows_the_same_example(project, examples, expert):
    client = login(expert)
    first = client.get(url("review_next", project)).content.decode()
    again = client.get(url("review_next", project)).content.decode()
    held = f'data-example="{examples[0].pk}"'
    assert held in first and held in again
    assert Example.objects.filter(locked_by=expert).count() == 1
    skipped = client.get(url("review_next", project) + f"?after={examples[0].pk}").content.decode()
    assert f'data-example="{examples[1].pk}"' in skipped
    assert list(Example.objects.filter(locked_by=expert).values_list("pk", flat=True)) == [examples[1].pk]


def lock_token(page: str) -> str:
    return re.search(r'data-lock-token="([^"]+)"', page).group(1)


def test_a_release_undoes_only_the_claim_of_the_page_that_sends_it(project, examples, expert, make_user):
    client = login(expert)
    page1 = client.get(url("review_example", project, examples[0])).content.decode()
    page2 = client.get(url("review_example", project, examples[0])).content.decode()  # a reload
    assert lock_token(page1) != lock_token(page2)
    assert f'name="lock_token" value="{lock_token(page2)}"' in page2  # the draft autosave keeps it
    release = url("review_release", project, examples[0])
    assert client.post(release, {"token": lock_token(page1)}).status_code == 204  # page 1's late beacon
    assert client.post(release, {}).status_code == 204
    assert Example.objects.get(pk=examples[0].pk).locked_by == expert
    colleague = make_user("alex")
    services.membership_set(project=project, user=colleague, role="expert")
    assert (
        "is reviewing this example"
        in login(colleague).get(url("review_example", project, examples[0])).content.decode()
    )
    assert client.post(release, {"token": lock_token(page2)}).status_code == 204
    assert Example.objects.get(pk=examples[0].pk).locked_by is None


def test_a_label_queue_that_runs_out_says_so_and_stays_in_its_label(project, examples, expert, lead):
    services.example_update(example=examples[1], user=lead, version=1, changes={"label": "P1"})
    client = login(expert)
    page = client.get(url("review_next", project) + "?label=P1").content.decode()
    assert f'data-example="{examples[1].pk}"' in page and "queue: P1 only" in page
    example = Example.objects.get(pk=examples[1].pk)
    data = form_for(example, label="P1", queue_label="P1")
    response = client.post(url("review_submit", project, example), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No P1 examples left" in body and "data-example=" not in body
    assert response["HX-Push-Url"] == url("review_next", project) + "?label=P1"
    assert "HX-Redirect" not in response
    assert not Example.objects.filter(locked_by=expert).exists()  # no P4 example was claimed behind the message
    again = client.get(url("review_next", project) + "?label=P1", HTTP_HX_REQUEST="true").content.decode()
    assert "No P1 examples left" in again and "data-label-key" not in again
    assert "No P1 examples left" in client.get(url("review_next", project) + "?label=P1").content.decode()
    assert Example.objects.filter(status="pending", label="P4").count() == 4


def test_a_label_queue_is_kept_through_previous_and_reload(project, examples, expert, lead):
    for example in examples[:3]:
        services.example_update(example=example, user=lead, version=1, changes={"label": "P1"})
    client = login(expert)
    first = Example.objects.get(pk=examples[0].pk)
    response = client.post(
        url("review_submit", project, first), form_for(first, label="P1", queue_label="P1"), HTTP_HX_REQUEST="true"
    )
    assert response["HX-Push-Url"] == url("review_example", project, examples[1]) + "?label=P1"
    back = url("review_example", project, examples[0]) + "?label=P1"
    assert f'hx-get="{back}"' in response.content.decode()  # "previous" keeps the queue's label
    assert 'name="queue_label" value="P1"' in client.get(back).content.decode()
    non_htmx = client.post(
        url("review_submit", project, examples[2]), form_for(examples[2], label="P1", queue_label="P1")
    )
    assert non_htmx.status_code == 302 and non_htmx["Location"].endswith("?label=P1")


def test_approving_an_answer_that_does_not_fit_the_format_asks_to_confirm_it(project, examples, expert):
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    bad = "Severity: high\nIMPACT: one user"
    response = client.post(
        url("review_submit", project, examples[0]), form_for(examples[0], content_2=bad), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "does not fit the output format" in body and "Press a again" in body
    assert "line 1, column 2 does not fit the format" in body
    assert "Expected: the whole answer matches the pattern <code>(?s)SEVERITY: P[1-4]\\n.*</code>" in body
    assert "Severity: high" in body  # the edit is kept
    confirmation = re.search(r'name="format_confirmed" value="([0-9a-f]+)"', body).group(1)
    assert Example.objects.get(pk=examples[0].pk).status == "pending" and not Review.objects.exists()
    # The confirmation is for this answer: another answer that does not fit asks again.
    other = form_for(examples[0], content_2=bad + "!", format_confirmed=confirmation)
    assert client.post(url("review_submit", project, examples[0]), other, HTTP_HX_REQUEST="true").status_code == 422
    confirmed = form_for(examples[0], content_2=bad, format_confirmed=confirmation)
    assert client.post(url("review_submit", project, examples[0]), confirmed, HTTP_HX_REQUEST="true").status_code == 200
    done = Example.objects.get(pk=examples[0].pk)
    assert (done.status, done.messages[2]["content"]) == ("approved", bad)
    # Rejecting asks nothing; an answer that fits asks nothing.
    rejected = form_for(examples[1], decision="rejected", content_2=bad)
    assert client.post(url("review_submit", project, examples[1]), rejected, HTTP_HX_REQUEST="true").status_code == 200


def test_the_json_schema_check_names_the_schema_path_and_keyword(project, examples, expert):
    schema = {"type": "object", "required": ["severity"], "properties": {"severity": {"enum": ["P1", "P2"]}}}
    services.project_update(project=project, output_format={"kind": "json_schema", "schema": schema})
    response = login(expert).post(
        url("review_check", project, examples[0]),
        {"field": "content_2", "content_2": '{"severity": "P9"}'},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "at $.severity" in body and "#/properties/severity/enum" in body and "keyword &quot;enum&quot;" in body


def test_needs_changes_without_a_reason_is_a_422_that_keeps_the_edit(project, examples, expert):
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    data = form_for(examples[0], decision="needs_changes", comment=" ", content_2="SEVERITY: P2\nIMPACT: kept")
    response = client.post(url("review_submit", project, examples[0]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "say in the comment what needs to change" in response.content.decode()
    assert "IMPACT: kept" in response.content.decode() and not Review.objects.exists()
    data["comment"] = "The impact is the whole team."
    assert client.post(url("review_submit", project, examples[0]), data, HTTP_HX_REQUEST="true").status_code == 200
    assert Review.objects.get().comment == "The impact is the whole team."


def test_destructive_actions_ask_first_and_differing_duplicates_have_no_choice_made(project, examples, lead):
    Example.objects.filter(pk__in=[examples[0].pk, examples[1].pk]).update(cluster_id=examples[0].pk)
    exact = chat("same words", label="P4")
    Example.objects.filter(pk__in=[examples[2].pk, examples[3].pk]).update(
        cluster_id=examples[2].pk, messages=exact["messages"], label="P4"
    )
    page = login(lead).get(url("project_detail", project)).content.decode()
    differing = re.search(rf'data-cluster="{examples[0].pk}".*?</form>', page, re.S).group(0)
    same = re.search(rf'data-cluster="{examples[2].pk}".*?</form>', page, re.S).group(0)
    assert "checked" not in differing and "required" in differing
    assert 'data-confirm="Keep the chosen example and reject the other 1 of this cluster?"' in differing
    assert same.count("checked") == 1
    draft = services.draft_save(example=examples[4], user=lead, base_version=1, messages=examples[4].messages)
    panel = login(lead).get(url("review_example", project, examples[4])).content.decode()
    assert draft and "Draft restored" in panel and 'hx-confirm="Discard your draft?' in panel
