"""Writes of the review: the queue and its locks, reviews, drafts, rounds sent back, the lead's adjudication."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core.errors import ServiceError
from core.rows import model_columns, model_from_row

from .. import formats
from ..models import Draft, Example, Project, Review, ReviewStatus, Revision
from ..selectors.review import progress_of
from .examples import VersionConflict, example_states_write, example_update, example_values_clean


class ExampleLocked(Exception):
    """Another expert holds the example right now."""

    def __init__(self, example: Example):
        super().__init__(f"Example #{example.pk} is being reviewed by {example.locked_by} right now.")
        self.example = example


logger = logging.getLogger(__name__)


def _lock_until():
    return timezone.now() + timedelta(seconds=settings.FINELINE_REVIEW_LOCK_SECONDS)


def _held_key(project_id: int, reviewer: AbstractBaseUser) -> str:
    return f"curation:current:{project_id}:{reviewer.pk}"


def _remember_current(reviewer: AbstractBaseUser, example: Example) -> None:
    """The queue's example for this reviewer, with its claim's token. Safe before a commit: a rolled-back claim
    leaves a hint that review_queue_next checks against the row."""
    key = _held_key(example.project_id, reviewer)
    cache.set(key, (example.pk, example.lock_token), settings.FINELINE_REVIEW_LOCK_SECONDS)


def review_queue_next(
    *,
    project: Project,
    reviewer: AbstractBaseUser,
    after_id: int | None = None,
    label: str = "",
    reviewed: int | None = None,
) -> Example | None:
    """Claim the next example for this reviewer alone.

    The next example still needs a review, is not held by anyone else (a lock from a closed tab counts as free once
    it has expired) and has not been reviewed by this reviewer. Rows another request is claiming at this very
    moment are skipped (SKIP LOCKED), so two experts asking at once never get the same example. `after_id` skips
    ahead (the "next" key), wrapping around to the start, and gives that example back. Asked again without skipping
    (a reload), the reviewer gets the example the queue gave them last rather than a second one; so does "next"
    from an example they went back to (the "previous" key), so that the example they left is never stranded
    behind them. Other examples are given back by the review, by the page that leaves them (review_lock_release)
    or by their lock's expiry. `label` limits the queue to one label (to send experts where the balance needs
    them): when no example of that label is left, None, never an example of another label. `reviewed`: the example
    this reviewer has just reviewed, whose draft goes (with the claim, in one statement on PostgreSQL).

    The example comes with `draft_id` set: this reviewer's draft of it, or None (the page needs no query to know).
    """
    now = timezone.now()
    # The example the queue gave this reviewer last and its claim's token (the lock columns are not indexed, so the
    # cache remembers it).
    current_id, current_token = cache.get(_held_key(project.pk, reviewer)) or (None, "")
    release = after_id if after_id is not None and after_id != reviewed else None  # a reviewed one is released
    again = current_id is not None and current_id != after_id
    if connection.vendor == "postgresql":
        # A claim alone (no review with it) is a lock that expires by itself: its commit need not wait for the disk,
        # and being one statement it needs no transaction of its own (one round trip). A crash that loses it frees
        # the example, as its expiry would.
        quick = not connection.in_atomic_block
        example = None
        if again:
            # A reload, or "next" after a look back: the same example while it still needs this reviewer, held by
            # them or given back by the page that held it (its token unchanged: no colleague has claimed it since).
            example = _claim_pg(project, reviewer, now, label, None, release, reviewed, again=current_id,
                                token=current_token, quick=quick)  # fmt: skip
            release = reviewed = None  # given back and dropped by now
        if example is None:
            example = _claim_pg(project, reviewer, now, label, after_id, release, reviewed, quick=quick)
        if example is None:
            # Wrap around to the start (after "next"), or look once more: under many concurrent claims (and an
            # import) the statement has come back empty while examples were free (cause not pinned down yet).
            example = _claim_pg(project, reviewer, now, label, None, None, None, quick=quick)
        if example is None:
            # Once it came back empty twice in a row (an expert's first page said the queue was empty): before
            # "nothing left", the plain two statements (SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE) look too.
            with transaction.atomic():
                example = _claim_orm(project, reviewer, now, label, None)
            if example is not None:
                logger.warning("the claim statement found nothing; the fallback claimed #%s", example.pk)
    else:
        with transaction.atomic(savepoint=False):
            example = None
            if again:
                _release_and_drop(reviewer, release, reviewed)
                example = _claim_again_orm(project, reviewer, now, label, current_id, current_token)
                release = reviewed = None
            if example is None:
                _release_and_drop(reviewer, release, reviewed)
                example = _claim_orm(project, reviewer, now, label, after_id)
    if example is not None:
        _remember_current(reviewer, example)
    return example


def _claim_again_orm(project: Project, reviewer: AbstractBaseUser, now, label: str, current_id: int, token: str):
    held = Q(locked_by=reviewer, locked_until__gt=now)
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    given_back = (Q(lock_token=token) & free) if token else Q(pk__in=[])
    current = (
        Example.objects.filter(held | given_back, pk=current_id, project=project)
        .filter(status=ReviewStatus.PENDING, disputed=False, review_count__lt=project.reviews_required)
        .filter(**({"label": label} if label else {}))
        .exclude(_reviewed_by(reviewer))
        .first()
    )
    if current is None or not review_lock_claim(example=current, reviewer=reviewer):
        return None
    current.draft_id = _draft_id(current, reviewer)
    return current


def _release_and_drop(reviewer: AbstractBaseUser, release: int | None, reviewed: int | None) -> None:
    if release is not None:  # the example being skipped goes back to the queue at once
        Example.objects.filter(pk=release, locked_by=reviewer).update(locked_by=None, locked_until=None)
    if reviewed is not None:
        Draft.objects.filter(example_id=reviewed, user=reviewer).delete()


def _claim_orm(project: Project, reviewer: AbstractBaseUser, now, label: str, after_id: int | None) -> Example | None:
    candidates = (
        Example.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(project=project, status=ReviewStatus.PENDING, disputed=False)
        .filter(review_count__lt=project.reviews_required)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .filter(**({"label": label} if label else {}))
        .exclude(_reviewed_by(reviewer))
        .order_by("id")
    )
    example = candidates.filter(id__gt=after_id).first() if after_id is not None else None
    if example is None:
        example = candidates.first()
    if example is not None:
        example.locked_by, example.locked_until, example.lock_token = reviewer, _lock_until(), _lock_token()
        Example.objects.filter(pk=example.pk).update(
            locked_by=reviewer, locked_until=example.locked_until, lock_token=example.lock_token
        )
        example.draft_id = _draft_id(example, reviewer)
    return example


def _draft_id(example: Example, reviewer: AbstractBaseUser) -> int | None:
    return Draft.objects.filter(example=example, user=reviewer).values_list("pk", flat=True).first()


CLAIM_SQL = """
WITH released AS (
    UPDATE curation_example SET locked_by_id = NULL, locked_until = NULL
    WHERE id = %(release)s AND locked_by_id = %(reviewer)s
), dropped AS (
    DELETE FROM curation_draft WHERE example_id = %(reviewed)s AND user_id = %(reviewer)s
), chosen AS (
    SELECT e.id FROM curation_example e
    WHERE e.project_id = %(project)s AND e.status = 'pending' AND NOT e.disputed AND e.review_count < %(required)s
      AND {which} {label}
      AND NOT EXISTS (SELECT 1 FROM curation_review r
                      WHERE r.example_id = e.id AND r.reviewer_id = %(reviewer)s AND r.round = e.review_round)
    ORDER BY e.id LIMIT 1
    FOR NO KEY UPDATE OF e SKIP LOCKED
)
UPDATE curation_example SET locked_by_id = %(reviewer)s, locked_until = %(until)s, lock_token = %(token)s
WHERE id = (SELECT id FROM chosen)
RETURNING {columns},
    (SELECT d.id FROM curation_draft d WHERE d.example_id = curation_example.id AND d.user_id = %(reviewer)s),
    (SELECT json_object_agg(c.status, c.n) FROM (SELECT status, SUM(n) AS n FROM curation_examplecounter
                                                 WHERE project_id = %(project)s GROUP BY status) c),
    (SELECT r.example_id FROM curation_review r JOIN curation_example p ON p.id = r.example_id
     WHERE r.reviewer_id = %(reviewer)s AND p.project_id = %(project)s ORDER BY r.updated_at DESC LIMIT 1)
"""
# Sent with a claim alone in the same string (the simple query protocol): the two run as one implicit transaction.
QUICK_COMMIT = "SET LOCAL synchronous_commit TO OFF;\n"
# The first free example after `after` (a new claim), or the one the queue gave this reviewer last (`again`): held by
# them, or given back by the page that held it with its token unchanged (no colleague has claimed it since).
#
# The walk starts at the project's first pending example, found at the start of its (project, status, id) index: the
# planner walks the primary key from `after`, expecting a pending example at once, while the examples reviewed so far
# sit at the start of the id order. Without the floor, a claim from the start (a new session, the wrap-around)
# walked every reviewed example: 50 ms after 10,000 reviews at 1M, 1 ms with it.
CLAIM_NEXT = """(e.locked_until IS NULL OR e.locked_until < %(now)s) AND e.id > GREATEST(%(after)s,
      (SELECT min(p.id) - 1 FROM curation_example p WHERE p.project_id = %(project)s AND p.status = 'pending'))"""
CLAIM_AGAIN = """e.id = %(again)s AND ((e.locked_by_id = %(reviewer)s AND e.locked_until > %(now)s)
      OR (e.lock_token = %(old_token)s AND %(old_token)s <> ''
          AND (e.locked_until IS NULL OR e.locked_until < %(now)s)))"""


def _claim_pg(
    project: Project,
    reviewer: AbstractBaseUser,
    now,
    label: str,
    after_id,
    release,
    reviewed,
    *,
    again: int | None = None,
    token: str = "",
    quick: bool = False,
) -> Example | None:
    """The claim as one statement: give back the example skipped (`release`), drop the draft of the one reviewed,
    take the first free example after `after_id` (SKIP LOCKED) or claim `again` the queue's last example (with its
    old `token`), lock it, and return it with this reviewer's draft id, the project's progress (from the maintained
    counters, the review just written included) and the example this reviewer reviewed last (`previous_id`).
    `quick`: a claim alone, outside any transaction: the statement is its own transaction, committed without waiting
    for the disk (sent with its setting as one string: one round trip)."""
    columns = model_columns(Example)
    which = CLAIM_AGAIN if again is not None else CLAIM_NEXT
    sql = CLAIM_SQL.format(which=which, label="AND e.label = %(label)s" if label else "", columns=columns)
    params = {"release": release, "reviewed": reviewed, "reviewer": reviewer.pk, "project": project.pk,
              "required": project.reviews_required, "now": now, "after": after_id or 0, "label": label,
              "again": again, "old_token": token, "until": _lock_until(), "token": _lock_token()}  # fmt: skip
    with connection.cursor() as cursor:
        if quick:
            cursor.execute(QUICK_COMMIT + sql, params)
            cursor.nextset()
        else:
            cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    example = model_from_row(Example, row[:-3])
    example.draft_id, counts, example.previous_id = row[-3:]
    # counts: a json value, which psycopg decodes (Django leaves only jsonb as text, for its fields).
    example.progress = progress_of({status: int(count) for status, count in (counts or {}).items() if count})
    return example


def _reviewed_by(reviewer: AbstractBaseUser) -> Exists:
    """The example has this reviewer's review in its current round."""
    return Exists(Review.objects.filter(example=OuterRef("pk"), reviewer=reviewer, round=OuterRef("review_round")))


def _lock_token() -> str:
    return secrets.token_urlsafe(12)


def review_lock_claim(*, example: Example, reviewer: AbstractBaseUser, token: str = "") -> bool:
    """Hold (or keep holding) an example opened directly; False when another expert holds it.

    A claim issues a new token (example.lock_token); the page shows it and sends it back with its release. `token`:
    the page's own token, kept by its draft autosave's heartbeat (an unusable one is replaced by a new token).
    """
    now = timezone.now()
    until = _lock_until()
    if not (token and len(token) <= 32 and token.isascii()):
        token = _lock_token()
    claimed = (
        Example.objects.filter(pk=example.pk)
        .filter(Q(locked_by__isnull=True) | Q(locked_by=reviewer) | Q(locked_until__lt=now))
        .update(locked_by=reviewer, locked_until=until, lock_token=token)
    )
    if claimed:
        example.locked_by, example.locked_until, example.lock_token = reviewer, until, token
        current = cache.get(_held_key(example.project_id, reviewer))
        if current and current[0] == example.pk and current[1] != token:
            _remember_current(reviewer, example)  # the queue's example, claimed again (a reload): the new token
    else:
        example.refresh_from_db(fields=["locked_by", "locked_until", "lock_token"])
    return bool(claimed)


def review_lock_release(*, example: Example, reviewer: AbstractBaseUser, token: str) -> bool:
    """Give back the claim that carried this token (the page being left); a later claim, with a newer token, stays.
    True when the example was released."""
    if not token:
        return False
    # The token stays on the row: the queue knows the example as the one this reviewer left, not one claimed since.
    released = Example.objects.filter(pk=example.pk, locked_by=reviewer, lock_token=token).update(
        locked_by=None, locked_until=None
    )
    return bool(released)


def example_review(
    *,
    example: Example,
    reviewer: AbstractBaseUser,
    version: int,
    decision: str,
    label: str = "",
    messages: list | None = None,
    tags: list | None = None,
    comment: str = "",
    locked: bool = False,
    drop_draft: bool = True,
) -> Example:
    """Record an expert's review, with any edit to the conversation, label or tags, in one step.

    The decision is made on `version`: if the example changed since, VersionConflict (nothing is written). With one
    review required the decision sets the example's status and label; with more, the example is settled once the
    required reviews agree, and marked disputed (for the lead) when they do not.

    A handful of statements whatever the settings: the review written (with the round's reviews read back in the same
    statement on PostgreSQL), then one UPDATE of the example (edits, decision and settlement together) and one INSERT
    of its revisions. `locked`: the caller read `example` under a row lock in its own transaction (the review page
    does, to read it once). `drop_draft=False`: the caller deletes the reviewer's draft itself (with its next claim).
    """
    if decision not in Review.Decision.values:
        raise ServiceError(f"`decision` must be one of {', '.join(Review.Decision.values)}.", field="decision")
    project = example.project
    if decision == Review.Decision.APPROVED and project.labels and not (label or "").strip():
        raise ServiceError("choose a label before approving.", field="label")
    if decision == Review.Decision.NEEDS_CHANGES and not (comment or "").strip():
        raise ServiceError("say in the comment what needs to change.", field="comment")
    # A caller that holds the row (`locked`) runs the transaction and leaves it on an error: no savepoint needed.
    with transaction.atomic(savepoint=not locked):
        current = example if locked else example_for_review(example_id=example.pk)
        current.project = project
        if current.locked_by_id not in (None, reviewer.pk) and current.locked_until > timezone.now():
            raise ExampleLocked(current)
        if current.version != version:
            raise VersionConflict(current)
        changes: dict[str, Any] = {}
        if messages is not None and messages != current.messages:
            changes["messages"] = messages
        if tags is not None and tags != current.tags:
            changes["tags"] = tags
        if project.reviews_required == 1:
            changes["status"] = decision
            if label:
                changes["label"] = label
        label = formats.label_clean(label, frozenset(project.labels)) if label else ""
        states: list[tuple[dict[str, Any], str]] = (
            [(example_values_clean(project, changes), comment)] if changes else []
        )
        reviews = _review_write(current, reviewer, decision, label, comment, version + len(states))
        settled: dict[str, Any] = {"review_count": len(reviews), "locked_by": None, "locked_until": None,
                                   "lock_token": "", "disputed": False}  # fmt: skip
        if project.reviews_required > 1 and len(reviews) >= project.reviews_required:
            if len(set(reviews)) == 1:
                agreed = example_values_clean(project, {"status": decision, "label": label})
                states.append((agreed, "The required reviews agree."))
            else:
                settled["disputed"] = True
        current = example_states_write(example=current, user=reviewer, version=version, states=states, also=settled)
        if drop_draft:
            Draft.objects.filter(example=current, user=reviewer).delete()
    return current


def example_for_review(*, example_id: int) -> Example:
    """The example under a row lock, with what a review writes from (its lock holder, its import's author)."""
    return Example.objects.select_for_update(of=("self",)).select_related("locked_by", "import_job").get(pk=example_id)


REVIEW_WRITE_SQL = """
WITH mine AS (
    INSERT INTO curation_review AS r (example_id, reviewer_id, decision, label, comment, example_version, round,
                                      created_at, updated_at)
    VALUES (%(example)s, %(reviewer)s, %(decision)s, %(label)s, %(comment)s, %(version)s, %(round)s, %(now)s, %(now)s)
    ON CONFLICT (example_id, reviewer_id, round) DO UPDATE SET decision = EXCLUDED.decision, label = EXCLUDED.label,
        comment = EXCLUDED.comment, example_version = EXCLUDED.example_version, updated_at = EXCLUDED.updated_at
    RETURNING id
)
SELECT decision, label FROM curation_review
WHERE example_id = %(example)s AND round = %(round)s AND id NOT IN (SELECT id FROM mine)
"""


def _review_write(
    example: Example, reviewer: AbstractBaseUser, decision: str, label: str, comment: str, version: int
) -> list[tuple[str, str]]:
    """Write the reviewer's review of this round (or replace theirs) and return every (decision, label) of the round.
    On PostgreSQL one statement: the query beside the insert sees the round as it was, so this reviewer's earlier
    review (replaced) is left out and the new one added."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        params = {"example": example.pk, "reviewer": reviewer.pk, "decision": decision, "label": label,
                  "comment": comment, "version": version, "round": example.review_round, "now": now}  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(REVIEW_WRITE_SQL, params)
            return [*cursor.fetchall(), (decision, label)]
    Review.objects.bulk_create(
        [Review(example=example, reviewer=reviewer, decision=decision, label=label, comment=comment,
                example_version=version, round=example.review_round, created_at=now, updated_at=now)],
        update_conflicts=True,
        unique_fields=["example", "reviewer", "round"],
        update_fields=["decision", "label", "comment", "example_version", "updated_at"],
    )  # fmt: skip
    return list(Review.objects.filter(example=example, round=example.review_round).values_list("decision", "label"))


def examples_send_to_review(
    *, project: Project, example_ids: list[int], user: AbstractBaseUser | None, tag: str, comment: str
) -> int:
    """Put examples back in the experts' queue: pending again, tagged, in a new review round (the earlier reviews
    stay, so agreement and history keep them). Returns how many were sent back."""
    tag = tag.strip()
    if not tag or len(tag) > 100:
        raise ServiceError("a tag of 1 to 100 characters marks the examples sent back.", field="tag")
    sent = 0
    for example in Example.objects.filter(project=project, pk__in=example_ids).order_by("id"):
        with transaction.atomic():
            tags = example.tags if tag in example.tags else [*example.tags, tag]
            example_update(
                example=example,
                user=user,
                version=example.version,
                changes={"status": ReviewStatus.PENDING, "tags": tags},
                comment=comment,
            )
            Example.objects.filter(pk=example.pk).update(
                review_round=F("review_round") + 1, review_count=0, disputed=False
            )
        sent += 1
    return sent


def example_adjudicate(
    *, example: Example, lead: AbstractBaseUser, version: int, decision: str, label: str, comment: str = ""
) -> Example:
    """The lead settles a disputed example: the final status and label."""
    if decision not in Review.Decision.values:
        raise ServiceError(f"`decision` must be one of {', '.join(Review.Decision.values)}.", field="decision")
    with transaction.atomic():
        example = example_update(
            example=example,
            user=lead,
            version=version,
            changes={"status": decision, "label": label},
            comment=comment or "Adjudicated by the lead.",
            kind=Revision.Kind.ADJUDICATE,
        )
        Example.objects.filter(pk=example.pk).update(disputed=False)
        example.disputed = False
    return example


def draft_save(
    *,
    example: Example,
    user: AbstractBaseUser,
    base_version: int,
    messages: Any,
    label: str = "",
    tags: list | None = None,
    comment: str = "",
    lock_token: str = "",
) -> Draft:
    """Keep an edit in progress (it may be unfinished: only its shape is checked) and extend the reviewer's lock
    under the page's `lock_token`."""
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise ServiceError("a draft's messages must be a list of {role, content} strings.", field="messages")
    try:
        label = formats.label_clean(label, frozenset())  # any label while drafting; the review checks the set
        tags = formats.tags_clean(tags or [])
    except formats.InvalidExample as error:
        raise ServiceError(error.message, field=error.code)
    if formats.has_nul([messages, comment]):
        raise ServiceError("a draft cannot hold a NUL character (\\u0000).", field="messages")
    draft, _ = Draft.objects.update_or_create(
        example=example,
        user=user,
        defaults={
            "base_version": base_version,
            "messages": messages,
            "label": label or "",
            "tags": tags or [],
            "comment": comment or "",
        },
    )
    review_lock_claim(example=example, reviewer=user, token=lock_token)
    return draft


def draft_discard(*, example: Example, user: AbstractBaseUser) -> None:
    Draft.objects.filter(example=example, user=user).delete()


def example_review_then_next(
    *, example: Example, reviewer: AbstractBaseUser, queue_label: str = "", locked: bool = False, **review
) -> Example | None:
    """Record a review and claim the reviewer's next example, in one transaction (one commit, not two): the review's
    draft goes with the claim's statement."""
    with transaction.atomic(savepoint=not locked):
        done = example_review(example=example, reviewer=reviewer, locked=locked, drop_draft=False, **review)
        return review_queue_next(
            project=example.project, reviewer=reviewer, after_id=done.pk, label=queue_label, reviewed=done.pk
        )
