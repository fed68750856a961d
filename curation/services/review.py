"""Writes of the review: the queue and its locks, reviews, drafts, rounds sent back, the lead's adjudication."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core.errors import ServiceError

from .. import formats
from ..models import Draft, Example, Project, Review, ReviewStatus, Revision
from .examples import VersionConflict, example_update


class ExampleLocked(Exception):
    """Another expert holds the example right now."""

    def __init__(self, example: Example):
        super().__init__(f"Example #{example.pk} is being reviewed by {example.locked_by} right now.")
        self.example = example


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
    *, project: Project, reviewer: AbstractBaseUser, after_id: int | None = None, label: str = ""
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
    them): when no example of that label is left, None, never an example of another label.
    """
    now = timezone.now()
    # The example the queue gave this reviewer last and its claim's token (the lock columns are not indexed, so the
    # cache remembers it).
    current_id, current_token = cache.get(_held_key(project.pk, reviewer)) or (None, "")
    if after_id is not None:  # the example being skipped goes back to the queue at once
        Example.objects.filter(pk=after_id, locked_by=reviewer).update(locked_by=None, locked_until=None)
    if current_id is not None and current_id != after_id:
        # A reload, or "next" after a look back: the same example while it still needs this reviewer, held by them
        # or given back by the page that held it (its token unchanged: no colleague has claimed it meanwhile).
        held = Q(locked_by=reviewer, locked_until__gt=now)
        free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
        given_back = (Q(lock_token=current_token) & free) if current_token else Q(pk__in=[])
        current = (
            Example.objects.filter(held | given_back, pk=current_id, project=project)
            .filter(status=ReviewStatus.PENDING, disputed=False, review_count__lt=project.reviews_required)
            .filter(**({"label": label} if label else {}))
            .exclude(_reviewed_by(reviewer))
            .first()
        )
        if current is not None and review_lock_claim(example=current, reviewer=reviewer):
            return current
    with transaction.atomic():
        candidates = (
            Example.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(project=project, status=ReviewStatus.PENDING, disputed=False)
            .filter(review_count__lt=project.reviews_required)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .filter(**({"label": label} if label else {}))
            .exclude(_reviewed_by(reviewer))
            .order_by("id")
        )
        example = None
        if after_id is not None:
            example = candidates.filter(id__gt=after_id).first()
        if example is None:
            example = candidates.first()
        if example is not None:
            example.locked_by, example.locked_until, example.lock_token = reviewer, _lock_until(), _lock_token()
            Example.objects.filter(pk=example.pk).update(
                locked_by=reviewer, locked_until=example.locked_until, lock_token=example.lock_token
            )
            _remember_current(reviewer, example)
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
) -> Example:
    """Record an expert's review, with any edit to the conversation, label or tags, in one step.

    The decision is made on `version`: if the example changed since, VersionConflict (nothing is written). With one
    review required the decision sets the example's status and label; with more, the example is settled once the
    required reviews agree, and marked disputed (for the lead) when they do not.
    """
    if decision not in Review.Decision.values:
        raise ServiceError(f"`decision` must be one of {', '.join(Review.Decision.values)}.", field="decision")
    project = example.project
    if decision == Review.Decision.APPROVED and project.labels and not (label or "").strip():
        raise ServiceError("choose a label before approving.", field="label")
    if decision == Review.Decision.NEEDS_CHANGES and not (comment or "").strip():
        raise ServiceError("say in the comment what needs to change.", field="comment")
    with transaction.atomic():
        current = (
            Example.objects.select_for_update(of=("self",)).select_related("locked_by", "import_job").get(pk=example.pk)
        )
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
        if changes:
            current = example_update(
                example=current,
                user=reviewer,
                version=version,
                changes=changes,
                comment=comment,
                kind=Revision.Kind.REVIEW,
            )
        label = formats.label_clean(label, frozenset(project.labels)) if label else ""
        now = timezone.now()
        Review.objects.bulk_create(
            [
                Review(
                    example=current,
                    reviewer=reviewer,
                    decision=decision,
                    label=label,
                    comment=comment,
                    example_version=current.version,
                    round=current.review_round,
                    created_at=now,
                    updated_at=now,
                )
            ],
            update_conflicts=True,
            unique_fields=["example", "reviewer", "round"],
            update_fields=["decision", "label", "comment", "example_version", "updated_at"],
        )
        reviews = list(
            Review.objects.filter(example=current, round=current.review_round).values_list("decision", "label")
        )
        settled = {
            "review_count": len(reviews),
            "locked_by": None,
            "locked_until": None,
            "lock_token": "",
            "disputed": False,
        }
        if project.reviews_required > 1 and len(reviews) >= project.reviews_required:
            if len(set(reviews)) == 1:
                current = example_update(
                    example=current,
                    user=reviewer,
                    version=current.version,
                    changes={"status": decision, "label": label},
                    comment="The required reviews agree.",
                    kind=Revision.Kind.REVIEW,
                )
            else:
                settled["disputed"] = True
        Example.objects.filter(pk=current.pk).update(**settled)
        for key, value in settled.items():
            setattr(current, key, value)
        Draft.objects.filter(example=current, user=reviewer).delete()
    return current


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
    *, example: Example, reviewer: AbstractBaseUser, queue_label: str = "", **review
) -> Example | None:
    """Record a review and claim the reviewer's next example, in one transaction (one commit, not two)."""
    with transaction.atomic():
        example_review(example=example, reviewer=reviewer, **review)
        return review_queue_next(project=example.project, reviewer=reviewer, after_id=example.pk, label=queue_label)
