"""Bulk actions of a project lead: approve, reject, set a label, add a tag or send back to review many examples at once.

Set-based: whatever the number of examples, a handful of statements (on PostgreSQL one of each kind; elsewhere one
of each per 500 examples), never one UPDATE per example. Each changed example still gets what a single edit gives
it: a new version (so that an expert's open editor gets the usual conflict instead of overwriting the lead's change),
a revision by the lead and, for approve and reject, the lead's review. The counters follow through their triggers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import BooleanField, Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.errors import ServiceError

from . import formats, selectors
from .models import Draft, Example, ImportJob, Project, Review, ReviewStatus, Revision

ACTIONS = ("approve", "reject", "set_label", "add_tag", "send_to_review")
# The filters of the example list (selectors.example_list), as the browse page and the list API send them.
FILTERS = ("status", "label", "tag", "q", "reviewer", "format", "cluster", "too_long")
MAX_IDS = 50_000
DECISIONS = {"approve": ReviewStatus.APPROVED, "reject": ReviewStatus.REJECTED}
# SQLite's limit on the parameters of one statement is far above this; PostgreSQL takes all the ids as one array.
SQLITE_CHUNK = 500


def examples_bulk(
    *,
    project: Project,
    user: AbstractBaseUser,
    action: str,
    ids: list[int] | None = None,
    filters: dict[str, Any] | None = None,
    label: str = "",
    tag: str = "",
    comment: str = "",
) -> dict[str, int]:
    """Apply one action to the examples picked by `ids` or by `filters` (those of the example list), in one
    transaction, as `user` (the lead). Returns the counts: matched = changed + unchanged + skipped_locked +
    skipped_no_label.

    - approve / reject: the lead's decision settles the example (as an adjudication does, whatever the number of
      reviews required); recorded as the lead's review in the example's current round. `label` (optional) is set
      too when approving. Without it, in a project with a label set, an example without a label cannot be approved
      and is skipped (skipped_no_label).
    - set_label: `label`, one of the project's labels.
    - add_tag: `tag`.
    - send_to_review: pending again, in a new review round (earlier reviews kept), tagged with `tag` if given.

    Unchanged: examples already in the state asked for (no new version, no revision). Skipped (skipped_locked): those
    an expert is reviewing right now (their lock has not expired); the lead's change would pull the example from
    under them.
    """
    if action not in ACTIONS:
        raise ServiceError(f"`action` must be one of {', '.join(ACTIONS)}.", field="action")
    if (ids is None) == (filters is None):
        raise ServiceError("pick the examples by `ids` or by `filter`, not both and not neither.", field="ids")
    label, tag = _arguments(project, action, label, tag)
    comment = (comment or "").strip() or f"Bulk {action.replace('_', ' ')} by the lead."
    if formats.has_nul(comment):
        raise ServiceError("`comment` contains a NUL character.", field="comment")
    matched = _matched(project, ids, filters)
    now = timezone.now()
    needs = _needs_change(action, label, tag)
    free = Q(locked_by__isnull=True) | Q(locked_by=user) | Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    labelled = ~Q(label="") if action == "approve" and project.labels and not label else Q()
    with transaction.atomic():
        # Lock the rows to change, in id order (two bulk actions never wait on each other in a circle). An expert's
        # save on one of them waits for this transaction, then finds a newer version: the usual conflict.
        changing = matched.filter(needs & free & labelled).select_for_update(of=("self",)).order_by("id")
        changed_ids = list(changing.values_list("id", flat=True))
        counting = {"matched": Count("id"), "unchanged": Count("id", filter=~needs)}
        if labelled:
            counting["skipped_no_label"] = Count("id", filter=needs & free & ~labelled)
        counts = {"skipped_no_label": 0, **matched.aggregate(**counting)}
        for where, params in _by_ids(changed_ids):
            _write(action, where, params, user=user, label=label, tag=tag, comment=comment, now=now)
    changed = len(changed_ids)
    skipped_locked = max(0, counts["matched"] - counts["unchanged"] - counts["skipped_no_label"] - changed)
    return {
        "matched": counts["matched"],
        "changed": changed,
        "unchanged": counts["unchanged"],
        "skipped_locked": skipped_locked,
        "skipped_no_label": counts["skipped_no_label"],
    }


def _arguments(project: Project, action: str, label: str, tag: str) -> tuple[str, str]:
    try:
        label = formats.label_clean(label or "", frozenset(project.labels))
        tags = formats.tags_clean([tag] if tag else [])
    except formats.InvalidExample as error:
        raise ServiceError(error.message, field="tag" if error.code == "invalid_tags" else "label")
    tag = tags[0] if tags else ""
    if action == "set_label" and not label:
        raise ServiceError("choose the label to set.", field="label")
    if action == "add_tag" and not tag:
        raise ServiceError("write the tag to add.", field="tag")
    return label, tag


def _matched(project: Project, ids: list[int] | None, filters: dict[str, Any] | None) -> QuerySet[Example]:
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ServiceError("`ids` is a list of example ids.", field="ids")
        if len(ids) > MAX_IDS:
            raise ServiceError(f"at most {MAX_IDS:,} ids at once; pick more with a filter.", field="ids")
        return Example.objects.filter(project=project, pk__in=sorted(set(ids)))
    if not isinstance(filters, dict):
        raise ServiceError("`filter` is an object of the example list's filters.", field="filter")
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise ServiceError(
            f"unknown filter {', '.join(sorted(unknown))}; the filters are {', '.join(FILTERS)}.", field="filter"
        )
    values = {key: filters[key] for key in FILTERS if key in filters}
    too_long = values.pop("too_long", False)
    if not isinstance(too_long, bool) or not all(isinstance(value, str) for value in values.values()):
        raise ServiceError("each filter is a string (too_long: true or false).", field="filter")
    values = {key: value.strip() for key, value in values.items()}
    if values.get("status") and values["status"] not in ReviewStatus.values:
        raise ServiceError(f"`status` must be one of {', '.join(ReviewStatus.values)}.", field="filter")
    if any(formats.has_nul(value) for value in values.values()):
        raise ServiceError("a filter contains a NUL character.", field="filter")
    return selectors.example_list(project=project, too_long=too_long, **values)


def _has_tag(tag: str) -> Q:
    if connection.vendor == "postgresql":
        return Q(tags__contains=[tag])
    sql = "EXISTS (SELECT 1 FROM json_each(curation_example.tags) WHERE value = %s)"
    return Q(RawSQL(sql, [tag], output_field=BooleanField()))


def _needs_change(action: str, label: str, tag: str) -> Q:
    """The examples the action would change (the others are unchanged)."""
    if action in DECISIONS:
        needs = ~Q(status=DECISIONS[action])
        return needs | ~Q(label=label) if label else needs
    if action == "set_label":
        return ~Q(label=label)
    if action == "add_tag":
        return ~_has_tag(tag)
    # send_to_review: a pending example that nobody has reviewed in its round is already where it would be sent.
    settled = Q(status=ReviewStatus.PENDING, review_count=0, disputed=False)
    return ~(settled & _has_tag(tag)) if tag else ~settled


def _by_ids(ids: list[int]) -> Iterator[tuple[str, list]]:
    """A condition on curation_example.id picking these examples, with its parameters."""
    if not ids:
        return
    if connection.vendor == "postgresql":
        yield "curation_example.id = ANY(%s::bigint[])", [ids]
        return
    for start in range(0, len(ids), SQLITE_CHUNK):
        chunk = ids[start : start + SQLITE_CHUNK]
        yield f"curation_example.id IN ({', '.join(['%s'] * len(chunk))})", chunk


def _tags_with(tag: str) -> tuple[str, list]:
    """SQL for the example's tags with `tag` appended (the caller knows it is missing)."""
    if connection.vendor == "postgresql":
        return "curation_example.tags || jsonb_build_array(%s::text)", [tag]
    return "json_insert(curation_example.tags, '$[#]', %s)", [tag]


def _tag_missing(tag: str) -> tuple[str, list]:
    if connection.vendor == "postgresql":
        return "NOT (curation_example.tags @> jsonb_build_array(%s::text))", [tag]
    return "NOT EXISTS (SELECT 1 FROM json_each(curation_example.tags) WHERE value = %s)", [tag]


def _write(action: str, where: str, ids: list, *, user, label: str, tag: str, comment: str, now) -> None:
    """The statements of one action on the examples `where` picks: the state before the first change of imported
    examples (imports write no revision), the update, a revision of each new state, the lead's reviews."""
    example, revision = Example._meta.db_table, Revision._meta.db_table
    review, job, draft = Review._meta.db_table, ImportJob._meta.db_table, Draft._meta.db_table
    columns = "example_id, version, kind, author_id, messages, label, tags, metadata, status, comment, created_at"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {revision} ({columns}) SELECT curation_example.id, 1, %s, j.created_by_id,"
            " curation_example.messages, curation_example.label, curation_example.tags, curation_example.metadata,"
            f" curation_example.status, '', curation_example.created_at FROM {example} curation_example"
            f" LEFT JOIN {job} j ON j.id = curation_example.import_job_id"
            f" WHERE curation_example.version = 1 AND {where} ON CONFLICT (example_id, version) DO NOTHING",
            [Revision.Kind.IMPORT, *ids],
        )
        sets, params = ["version = version + 1", "updated_at = %s"], [now]
        if action in DECISIONS:
            sets += ["status = %s", "disputed = %s", "locked_by_id = NULL", "locked_until = NULL"]
            params += [DECISIONS[action], False]
            # The lead's review is one more review of the round, unless the lead had reviewed it already.
            sets.append(
                f"review_count = CASE WHEN EXISTS (SELECT 1 FROM {review} r WHERE r.example_id = curation_example.id"
                " AND r.reviewer_id = %s AND r.round = curation_example.review_round)"
                " THEN review_count ELSE review_count + 1 END"
            )
            params.append(user.pk)
            if label:
                sets.append("label = %s")
                params.append(label)
        elif action == "set_label":
            sets.append("label = %s")
            params.append(label)
        elif action == "add_tag":
            sql, args = _tags_with(tag)
            sets.append(f"tags = {sql}")
            params += args
        else:  # send_to_review
            sets += ["status = %s", "review_round = review_round + 1", "review_count = 0", "disputed = %s"]
            params += [ReviewStatus.PENDING, False]
            if tag:
                missing, missing_args = _tag_missing(tag)
                sql, args = _tags_with(tag)
                sets.append(f"tags = CASE WHEN {missing} THEN {sql} ELSE tags END")
                params += [*missing_args, *args]
        cursor.execute(f"UPDATE {example} SET {', '.join(sets)} WHERE {where}", [*params, *ids])
        kind = Revision.Kind.REVIEW if action in DECISIONS else Revision.Kind.EDIT
        cursor.execute(
            f"INSERT INTO {revision} ({columns}) SELECT curation_example.id, curation_example.version, %s, %s,"
            " curation_example.messages, curation_example.label, curation_example.tags, curation_example.metadata,"
            f" curation_example.status, %s, %s FROM {example} curation_example WHERE {where}",
            [kind, user.pk, comment, now, *ids],
        )
        if action in DECISIONS:
            cursor.execute(
                f"INSERT INTO {review} (example_id, reviewer_id, decision, label, comment, example_version, round,"
                " created_at, updated_at) SELECT curation_example.id, %s, %s, curation_example.label, %s,"
                " curation_example.version, curation_example.review_round, %s, %s"
                f" FROM {example} curation_example WHERE {where}"
                " ON CONFLICT (example_id, reviewer_id, round) DO UPDATE SET decision = excluded.decision,"
                " label = excluded.label, comment = excluded.comment, example_version = excluded.example_version,"
                " updated_at = excluded.updated_at",
                [user.pk, DECISIONS[action], comment, now, now, *ids],
            )
            cursor.execute(
                f"DELETE FROM {draft} WHERE user_id = %s AND example_id IN"
                f" (SELECT curation_example.id FROM {example} curation_example WHERE {where})",
                [user.pk, *ids],
            )
