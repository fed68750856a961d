"""Writes to examples: checked edits, revisions, restores, duplicates resolved, the word-search index."""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import ServiceError
from core.rows import rows_insert

from .. import formats
from ..models import Example, Project, ReviewStatus, Revision
from .imports import import_limits
from .projects import is_lead


class VersionConflict(Exception):
    """A write based on a stale version of an example; carries the example as it is now."""

    def __init__(self, current: Example):
        super().__init__(f"Example #{current.pk} is at version {current.version}.")
        self.current = current


EDITABLE_FIELDS = ("messages", "label", "tags", "metadata", "status")
# Edits and restores that set `status` skip the review's rules (how many reviews, agreement): leads only.
STATUS_BY_LEAD_ONLY = frozenset({Revision.Kind.EDIT, Revision.Kind.RESTORE})


def example_update(
    *,
    example: Example,
    user: AbstractBaseUser,
    version: int,
    changes: dict[str, Any],
    comment: str = "",
    kind: str = Revision.Kind.EDIT,
) -> Example:
    """Apply changes if `version` is still current; raise VersionConflict otherwise. Every change is a Revision."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}.")
    if "status" in changes and kind in STATUS_BY_LEAD_ONLY and not is_lead(project=example.project, user=user):
        raise PermissionDenied(
            "Only a project lead sets an example's status directly; experts decide through the review, "
            f"which needs {example.project.reviews_required} review(s)."
        )
    values = example_values_clean(example.project, changes)
    with transaction.atomic():
        return example_states_write(example=example, user=user, version=version, states=[(values, comment)], kind=kind)


def example_states_write(
    *,
    example: Example,
    user: AbstractBaseUser | None,
    version: int,
    states: list[tuple[dict[str, Any], str]],
    also: dict[str, Any] | None = None,
    kind: str = Revision.Kind.REVIEW,
) -> Example:
    """Apply successive changes (each already cleaned, with its comment) in one UPDATE, with `also` (columns that are
    not the content: a review's settlement, the lock), and keep each state as a revision, after the state the example
    had before its first change (imports write no revision, to stay fast), in one INSERT. The UPDATE is conditioned
    on `version`: VersionConflict when it is stale, and `example` is left as it was on any error."""
    revisions = []
    if states and example.version == 1:
        if "import_author_id" in example.__dict__:  # read with the example for a review
            author_id = example.import_author_id
        else:
            author_id = example.import_job.created_by_id if example.import_job_id else None
        initial = _revision_of(example, kind=Revision.Kind.IMPORT, author_id=author_id, created_at=example.created_at)
        revisions.append(initial)
    after = copy.copy(example)  # the states, applied to a copy until the row is written
    values: dict[str, Any] = {}
    for changes, comment in states:
        for key, value in changes.items():
            setattr(after, key, value)
        values.update(changes)
        after.version += 1
        revisions.append(_revision_of(after, kind=kind, author_id=user.pk if user else None, comment=comment))
    fields = {**values, **(also or {})}
    if states:
        fields.update(version=after.version, updated_at=timezone.now())
    try:
        # Only new messages can collide with the unique content hash; only then is a savepoint worth its cost.
        with transaction.atomic() if "messages" in values else nullcontext():
            updated = Example.objects.filter(pk=example.pk, version=version).update(**fields)
    except IntegrityError:
        raise _duplicate(example, values)
    if not updated:
        raise VersionConflict(Example.objects.get(pk=example.pk))
    if "messages" in values:
        _example_search_refresh(example.pk)
    if revisions:
        # The state before the first change may be being stored by a concurrent first edit: ON CONFLICT, nothing.
        rows_insert(Revision, revisions, ignore_conflicts=True)
    for key, value in fields.items():
        setattr(example, key, value)
    return example


def _revision_of(example: Example, *, kind: str, author_id, comment: str = "", created_at=None) -> Revision:
    return Revision(
        example=example,
        version=example.version,
        kind=kind,
        author_id=author_id,
        messages=example.messages,
        label=example.label,
        tags=example.tags,
        metadata=example.metadata,
        status=example.status,
        comment=comment,
        created_at=created_at or timezone.now(),
    )


def _duplicate(example: Example, values: dict[str, Any]) -> ServiceError:
    """The error for new messages that the unique index refused: they are another example's (named)."""
    duplicate = (
        Example.objects.filter(project_id=example.project_id, content_hash=values.get("content_hash"))
        .exclude(pk=example.pk)
        .values_list("pk", flat=True)
        .first()
    )
    named = f"example #{duplicate}" if duplicate is not None else "another example of the project"
    return ServiceError(f"these messages duplicate {named}.", field="messages")


def example_values_clean(project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    limits = import_limits()
    try:
        if "messages" in changes:
            messages = formats.validate_messages(changes["messages"], max_tokens=limits.max_tokens)
            messages_json = formats.messages_dump(messages)
            values["messages"] = orjson.loads(messages_json)
            values["content_hash"] = formats.content_hash(messages_json)
            fits = formats.answer_checker(project.output_format)
            values["format_ok"] = fits(formats.last_answer(messages)) if fits else None
            # A duplicate of another example is refused by the unique index when the row is written (_duplicate).
        if "label" in changes:
            values["label"] = formats.label_clean(changes["label"], frozenset(project.labels))
        if "tags" in changes:
            values["tags"] = formats.tags_clean(changes["tags"])
    except formats.InvalidExample as error:
        raise ServiceError(error.message, field=error.code)
    if "metadata" in changes:
        try:
            values["metadata"] = formats.metadata_clean(changes["metadata"] or {}, limits, measure=True)
        except formats.InvalidExample as error:
            raise ServiceError(error.message, field="metadata")
    if "status" in changes:
        if changes["status"] not in ReviewStatus.values:
            raise ServiceError(f"`status` must be one of {', '.join(ReviewStatus.values)}.", field="status")
        values["status"] = changes["status"]
    return values


def example_restore(*, example: Example, user: AbstractBaseUser, revision: Revision, version: int) -> Example:
    """Bring back an older state of the example as a new revision (history is never rewritten)."""
    if revision.example_id != example.pk:
        raise ServiceError("that revision belongs to another example.")
    changes = {
        "messages": revision.messages,
        "label": revision.label,
        "tags": revision.tags,
        "metadata": revision.metadata,
        "status": revision.status,
    }
    current = {key: getattr(example, key) for key in changes}
    changes = {key: value for key, value in changes.items() if current[key] != value}
    if "status" in changes and not is_lead(project=example.project, user=user):
        del changes["status"]  # an expert restores the content; the status stays what the review made it
        if not changes:
            raise ServiceError(
                f"the content already matches version {revision.version}; only a lead can restore its status."
            )
    if not changes:
        raise ServiceError(f"the example already matches version {revision.version}.")
    return example_update(
        example=example,
        user=user,
        version=version,
        changes=changes,
        comment=f"Restored version {revision.version}.",
        kind=Revision.Kind.RESTORE,
    )


def duplicates_resolve(*, project: Project, cluster_id: int, keep_id: int, user: AbstractBaseUser) -> int:
    """Keep one example of a duplicate cluster and reject the others (kept, with a comment, never deleted)."""
    members = list(Example.objects.filter(project=project, cluster_id=cluster_id).exclude(pk=keep_id))
    if not Example.objects.filter(project=project, cluster_id=cluster_id, pk=keep_id).exists():
        raise ServiceError("the example to keep is not in that cluster.", field="keep")
    rejected = 0
    with transaction.atomic():
        for example in members:
            if example.status == ReviewStatus.REJECTED:
                continue
            example_update(
                example=example,
                user=user,
                version=example.version,
                changes={"status": ReviewStatus.REJECTED},
                comment=f"Duplicate of #{keep_id}.",
            )
            rejected += 1
    return rejected


# --- Word search ---------------------------------------------------------------------------------------------

SEARCH_VECTOR_SQL = "jsonb_to_tsvector('simple', jsonb_path_query_array(messages, '$[*].content'), '[\"string\"]')"


def example_search_index(*, project_id: int, imported: int = 0, batch_size: int = 5000) -> int:
    """After an import: refresh the planner's statistics if the import was big, then fill in the search vectors
    that imports leave out, a batch per transaction. Returns how many examples were indexed."""
    if connection.vendor != "postgresql":
        return 0
    _analyze_after_bulk_import(imported)
    table = Example._meta.db_table
    indexed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET search_vector = {SEARCH_VECTOR_SQL} WHERE id IN (SELECT id FROM {table}"
                " WHERE project_id = %s AND search_vector IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)",
                [project_id, batch_size],
            )
            count = cursor.rowcount
        indexed += count
        if count < batch_size:
            return indexed


def _analyze_after_bulk_import(created: int) -> None:
    """Refresh the planner's statistics once a bulk import has grown the table by a tenth or more.

    Autovacuum does the same eventually (where it is on); until it does, stale statistics can make the planner
    scan whole projects where an index would find a handful of rows.
    """
    table = Example._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
        if created >= 1000 and (row is None or created * 10 >= max(row[0], 0)):
            cursor.execute(f"ANALYZE {table}")


def _example_search_refresh(example_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Example._meta.db_table} SET search_vector = {SEARCH_VECTOR_SQL} WHERE id = %s", [example_id]
            )
