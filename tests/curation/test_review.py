"""The review queue, reviews, multi-review agreement, drafts and restores (services and selectors)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from curation import selectors, services
from curation.models import Draft, Example, Review, Revision

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def examples(project, lead_api):
    rows = [chat(f"ticket {i}", label="P4") for i in range(6)]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    return list(Example.objects.filter(project=project).order_by("id"))


@pytest.fixture
def second_expert(project, make_user):
    user = make_user("alex")
    services.membership_set(project=project, user=user, role="expert")
    return user


def review(example, user, decision="approved", label="P2", **extra):
    example.refresh_from_db()
    return services.example_review(
        example=example, reviewer=user, version=example.version, decision=decision, label=label, **extra
    )


def test_two_experts_get_different_examples_and_locks_expire(project, examples, expert, second_expert, make_user):
    first = services.review_queue_next(project=project, reviewer=expert)
    second = services.review_queue_next(project=project, reviewer=second_expert)
    assert (first.pk, second.pk) == (examples[0].pk, examples[1].pk)
    assert services.review_lock_claim(example=first, reviewer=second_expert) is False
    # Asking again (a reload) gives each expert the example they hold, not a second one.
    assert services.review_queue_next(project=project, reviewer=expert).pk == first.pk
    # A closed tab's lock is reclaimed once it expires.
    Example.objects.filter(pk=first.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    third = make_user("sam")
    services.membership_set(project=project, user=third, role="expert")
    assert services.review_queue_next(project=project, reviewer=third).pk == first.pk


def test_asking_again_releases_the_previous_lock_and_next_skips_ahead(project, examples, expert):
    first = services.review_queue_next(project=project, reviewer=expert)
    skipped = services.review_queue_next(project=project, reviewer=expert, after_id=first.pk)
    assert skipped.pk == examples[1].pk
    assert Example.objects.filter(locked_by=expert).count() == 1
    current = skipped
    for example in examples[2:]:
        current = services.review_queue_next(project=project, reviewer=expert, after_id=current.pk)
        assert current.pk == example.pk
    wrapped = services.review_queue_next(project=project, reviewer=expert, after_id=current.pk)
    assert wrapped.pk == examples[0].pk


@pytest.mark.django_db(transaction=True)
def test_simultaneous_next_never_gives_one_example_to_two_experts(project, examples, expert, make_user):
    experts = [expert] + [make_user(f"expert{i}") for i in range(4)]
    for user in experts[1:]:
        services.membership_set(project=project, user=user, role="expert")
    barrier = threading.Barrier(len(experts))
    claimed = {}

    def ask(user):
        try:
            barrier.wait()
            claimed[user.username] = services.review_queue_next(project=project, reviewer=user).pk
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(user,)) for user in experts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 5 and len(set(claimed.values())) == 5


def test_a_late_release_from_a_page_left_behind_keeps_the_newer_claim(project, examples, expert, second_expert):
    # Page 1 gets the example from the queue; a reload (page 2) claims it again before page 1's release arrives.
    page1 = services.review_queue_next(project=project, reviewer=expert)
    token1 = page1.lock_token
    page2 = services.review_queue_next(project=project, reviewer=expert)
    assert page2.pk == page1.pk and page2.lock_token not in ("", token1)
    assert services.review_lock_release(example=page1, reviewer=expert, token=token1) is False
    held = Example.objects.get(pk=page1.pk)
    assert (held.locked_by, held.lock_token) == (expert, page2.lock_token)
    assert services.review_queue_next(project=project, reviewer=second_expert).pk != page1.pk
    # The same through a page opened directly (the review URL reloaded): each claim has its own token.
    direct = Example.objects.get(pk=examples[3].pk)
    assert services.review_lock_claim(example=direct, reviewer=expert)
    old = direct.lock_token
    assert services.review_lock_claim(example=direct, reviewer=expert) and direct.lock_token != old
    assert services.review_lock_release(example=direct, reviewer=expert, token=old) is False
    assert services.review_lock_release(example=direct, reviewer=expert, token="") is False
    assert Example.objects.get(pk=direct.pk).locked_by == expert
    # Page 2's own release gives the example back; a colleague can then have it.
    assert services.review_lock_release(example=page2, reviewer=expert, token=page2.lock_token) is True
    assert Example.objects.get(pk=page1.pk).locked_by is None
    assert services.review_lock_claim(example=Example.objects.get(pk=page1.pk), reviewer=second_expert)


def test_the_draft_heartbeat_keeps_the_pages_token(project, examples, expert):
    example = services.review_queue_next(project=project, reviewer=expert)
    token = example.lock_token
    services.draft_save(example=example, user=expert, base_version=1, messages=example.messages, lock_token=token)
    assert Example.objects.get(pk=example.pk).lock_token == token
    assert services.review_lock_release(example=example, reviewer=expert, token=token) is True


def test_previous_then_next_comes_back_to_the_example_left_and_strands_nothing(project, examples, expert):
    first = services.review_queue_next(project=project, reviewer=expert)
    current = services.example_review_then_next(
        example=first, reviewer=expert, version=1, decision="approved", label="P2"
    )
    assert current.pk == examples[1].pk
    for page_releases in (True, False):  # the page gives it back on "previous" (or its release is lost)
        previous = Example.objects.get(pk=first.pk)
        assert services.review_lock_claim(example=previous, reviewer=expert)  # p: the example reviewed before
        if page_releases:
            assert services.review_lock_release(example=current, reviewer=expert, token=current.lock_token)
            assert list(Example.objects.filter(locked_by=expert).values_list("pk", flat=True)) == [first.pk]
        current = services.review_queue_next(project=project, reviewer=expert, after_id=first.pk)  # n
        assert current.pk == examples[1].pk
        assert list(Example.objects.filter(locked_by=expert).values_list("pk", flat=True)) == [examples[1].pk]


def test_a_colleague_who_took_the_example_left_keeps_it(project, examples, expert, second_expert):
    first = services.review_queue_next(project=project, reviewer=expert)
    services.review_lock_release(example=first, reviewer=expert, token=first.lock_token)  # p, then a colleague
    assert services.review_queue_next(project=project, reviewer=second_expert).pk == first.pk
    assert services.review_queue_next(project=project, reviewer=expert).pk == examples[1].pk
    assert Example.objects.get(pk=first.pk).locked_by == second_expert


def test_a_label_queue_that_runs_out_serves_nothing_of_another_label(project, examples, expert, lead):
    services.example_update(example=examples[2], user=lead, version=1, changes={"label": "P1"})
    only = services.review_queue_next(project=project, reviewer=expert, label="P1")
    assert only.pk == examples[2].pk
    assert services.review_queue_next(project=project, reviewer=expert, label="P1", after_id=only.pk).pk == only.pk
    done = services.example_review_then_next(
        example=only, reviewer=expert, version=2, decision="approved", label="P1", queue_label="P1"
    )
    assert done is None
    assert services.review_queue_next(project=project, reviewer=expert, label="P1") is None
    # The example the queue gave last (a P4, taken unfiltered) is not served to the P1 queue either.
    p4 = services.review_queue_next(project=project, reviewer=expert)
    assert p4.label == "P4"
    assert services.review_queue_next(project=project, reviewer=expert, label="P1") is None
    assert services.review_queue_next(project=project, reviewer=expert, label="P1", after_id=p4.pk) is None


@pytest.mark.postgresql
def test_when_the_claim_statement_finds_nothing_the_plain_claim_still_serves_a_free_example(
    project, examples, expert, second_expert, monkeypatch
):
    """The one-statement claim came back empty, rarely, under load while examples were free; the queue does not say
    "nothing left" on its word alone: the two-statement claim looks once more (and logs a warning)."""
    held = services.review_queue_next(project=project, reviewer=second_expert)
    monkeypatch.setattr(services.review, "_claim_pg", lambda *args, **kwargs: None)
    example = services.review_queue_next(project=project, reviewer=expert)
    assert example is not None and example.pk != held.pk  # the colleague's example stays theirs
    example.refresh_from_db()
    assert example.locked_by == expert and example.locked_until > timezone.now() and example.lock_token
    # A reload with the queue's own statement back: the same example, not a second one.
    monkeypatch.undo()
    assert services.review_queue_next(project=project, reviewer=expert).pk == example.pk


def test_needs_changes_says_what(project, examples, expert):
    with pytest.raises(services.ServiceError, match="say in the comment what needs to change"):
        review(examples[0], expert, decision="needs_changes", comment="  ")
    assert not Review.objects.exists()
    done = review(examples[0], expert, decision="needs_changes", comment="The impact is a whole team.")
    assert done.status == "needs_changes" and done.reviews.get().comment == "The impact is a whole team."


def test_a_review_sets_status_and_label_keeps_history_and_frees_the_example(project, examples, expert):
    example = services.review_queue_next(project=project, reviewer=expert)
    messages = [dict(m) for m in example.messages]
    messages[-1]["content"] = "SEVERITY: P2\nIMPACT: Team blocked\nACTION: Escalate"
    services.draft_save(example=example, user=expert, base_version=1, messages=messages, label="P2")
    done = review(example, expert, messages=messages, tags=["edge_case"], comment="fixed the answer")
    assert (done.status, done.label, done.tags, done.version) == ("approved", "P2", ["edge_case"], 2)
    assert done.messages[-1]["content"].startswith("SEVERITY: P2")
    assert (done.locked_by, done.review_count) == (None, 1)
    assert not Draft.objects.exists()
    assert [(r.version, r.kind) for r in Revision.objects.filter(example=done)] == [(1, "import"), (2, "review")]
    assert services.review_queue_next(project=project, reviewer=expert).pk != done.pk


def test_a_stale_review_is_refused_and_writes_nothing(project, examples, expert, lead):
    example = examples[0]
    services.example_update(example=example, user=lead, version=1, changes={"label": "P1"})
    with pytest.raises(services.VersionConflict) as conflict:
        services.example_review(example=example, reviewer=expert, version=1, decision="approved", label="P3")
    assert conflict.value.current.label == "P1"
    assert not Review.objects.exists()
    example.refresh_from_db()
    assert (example.status, example.label) == ("pending", "P1")


def test_an_example_held_by_another_expert_cannot_be_reviewed(project, examples, expert, second_expert):
    example = services.review_queue_next(project=project, reviewer=second_expert)
    with pytest.raises(services.ExampleLocked):
        review(example, expert)


def test_approving_needs_a_label_when_the_project_has_labels(project, examples, expert):
    with pytest.raises(services.ServiceError):
        review(examples[0], expert, label="")
    assert review(examples[0], expert, decision="rejected", label="").status == "rejected"


def test_two_reviews_that_agree_settle_the_example(project, examples, expert, second_expert):
    services.project_update(project=project, reviews_required=2)
    example = examples[0]
    assert review(example, expert).status == "pending"  # one of two
    assert services.review_queue_next(project=project, reviewer=expert).pk != example.pk
    assert services.review_queue_next(project=project, reviewer=second_expert).pk == example.pk
    done = review(example, second_expert)
    assert (done.status, done.label, done.disputed, done.review_count) == ("approved", "P2", False, 2)


def test_two_reviews_that_disagree_go_to_the_lead(project, examples, expert, second_expert, lead):
    services.project_update(project=project, reviews_required=2)
    example = examples[0]
    review(example, expert, label="P2")
    disputed = review(example, second_expert, label="P3")
    assert (disputed.status, disputed.disputed) == ("pending", True)
    assert [e.pk for e in selectors.disagreement_list(project=project)] == [example.pk]
    assert services.review_queue_next(project=project, reviewer=lead).pk != example.pk
    settled = services.example_adjudicate(
        example=disputed, lead=lead, version=disputed.version, decision="approved", label="P3"
    )
    assert (settled.status, settled.label, settled.disputed) == ("approved", "P3", False)
    assert not selectors.disagreement_list(project=project).exists()


def test_agreement_is_cohens_kappa_for_two_and_krippendorffs_alpha_for_more(
    project, examples, expert, second_expert, make_user
):
    services.project_update(project=project, reviews_required=2)
    labels_a = ["P1", "P2", "P3", "P4", "P1", "P2"]
    labels_b = ["P1", "P2", "P3", "P4", "P2", "P2"]
    for example, a, b in zip(examples, labels_a, labels_b, strict=True):
        review(example, expert, label=a)
        review(example, second_expert, label=b)
    result = selectors.agreement(project=project)
    assert result["method"] == "Cohen's kappa" and result["examples"] == 6
    assert 0.5 < result["overall"] < 1
    assert result["per_label"]["P3"] == 1.0 and result["per_label"]["P1"] < 1

    third = make_user("sam")
    services.membership_set(project=project, user=third, role="expert")
    services.project_update(project=project, reviews_required=3)
    Example.objects.filter(pk=examples[0].pk).update(disputed=False)
    review(examples[0], third, label="P1")
    result = selectors.agreement(project=project)
    assert result["method"] == "Krippendorff's alpha" and result["reviewers"] == 3
    assert -1 <= result["overall"] <= 1


def test_expert_stats(project, examples, expert, second_expert):
    services.project_update(project=project, reviews_required=2)
    for example in examples[:2]:
        review(example, expert, label="P2")
        review(example, second_expert, label="P2" if example is examples[0] else "P3")
    stats = {row["username"]: row for row in selectors.expert_stats(project=project)}
    assert stats["maria"]["reviews"] == 2 and stats["maria"]["per_hour"] == 2.0
    assert stats["maria"]["agreement"] == 1.0  # the disputed one is not settled yet


def test_history_shows_diffs_and_restore_brings_back_an_old_version(project, examples, expert):
    example = examples[0]
    messages = [dict(m) for m in example.messages]
    messages[-1]["content"] = "SEVERITY: P1\nIMPACT: everything\nACTION: page on-call"
    services.example_update(example=example, user=expert, version=1, changes={"messages": messages, "label": "P1"})
    history = selectors.example_history(example=example)
    assert [view.revision.version for view in history] == [2, 1]
    assert "label: P4 → P1" in history[0].changes
    role, lines = history[0].diffs[0]
    assert role == "assistant" and ("+", "SEVERITY: P1") in lines and ("-", "SEVERITY: P4") in lines
    example.refresh_from_db()
    original = Revision.objects.get(example=example, version=1)
    restored = services.example_restore(example=example, user=expert, revision=original, version=2)
    assert (restored.version, restored.label, restored.messages) == (3, "P4", original.messages)
    assert Revision.objects.get(example=example, version=3).kind == "restore"


def test_a_review_from_the_page_keeps_who_imported_and_who_reviewed(project, examples, expert, lead, client):
    """The review page reads the example (with who imported it) in one statement of its own: the first revision
    names the importer, the review's names the expert."""
    client.force_login(expert)
    page = client.get(f"/projects/{project.slug}/review/", headers={"HX-Request": "true"}).content.decode()
    example = Example.objects.get(pk=int(page.split('data-example="', 1)[1].split('"', 1)[0]))
    body = {"decision": "approved", "version": example.version, "label": "P2", "tags": ""}
    for index, message in enumerate(example.messages):
        body.update({f"role_{index}": message["role"], f"content_{index}": message["content"]})
    url = f"/projects/{project.slug}/examples/{example.pk}/submit/"
    answer = client.post(url, body, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    revisions = Revision.objects.filter(example=example).order_by("version")
    assert [(r.version, r.kind, r.author_id) for r in revisions] == [(1, "import", lead.pk), (2, "review", expert.pk)]


def test_the_panel_links_hold_the_slug_and_the_id_whatever_digits_the_slug_has():
    from curation.views.review import example_urls

    urls = example_urls("q987654321-slug-placeholder", 12)
    assert urls["review_submit"] == "/projects/q987654321-slug-placeholder/examples/12/submit/"
    assert urls["example_history"] == "/projects/q987654321-slug-placeholder/examples/12/history/"
