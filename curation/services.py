"""Writes to curation data: projects, members, imports, edits, reviews, quality scans and dataset versions."""

from __future__ import annotations

import bisect
import hashlib
import heapq
import logging
import math
import re
import secrets
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from core import server_paths
from core.errors import ServiceError

from . import formats, patterns, quality, selectors
from .models import (
    DatasetVersion,
    DatasetVersionItem,
    Draft,
    Example,
    ImportJob,
    Membership,
    Project,
    QualityScan,
    Review,
    ReviewStatus,
    Revision,
)

logger = logging.getLogger(__name__)
OUTPUT_FORMAT_KINDS = ("none", "regex", "json_schema")


class ExampleLocked(Exception):
    """Another expert holds the example right now."""

    def __init__(self, example: Example):
        super().__init__(f"Example #{example.pk} is being reviewed by {example.locked_by} right now.")
        self.example = example


class VersionConflict(Exception):
    """A write based on a stale version of an example; carries the example as it is now."""

    def __init__(self, current: Example):
        super().__init__(f"Example #{current.pk} is at version {current.version}.")
        self.current = current


def output_format_clean(spec: Any) -> dict:
    """Validate an output format spec: {"kind": "none"}, {"kind": "regex", "pattern"} or {"kind": "json_schema",
    "schema"}."""
    if spec in (None, {}):
        return {"kind": "none"}
    if not isinstance(spec, dict) or spec.get("kind") not in OUTPUT_FORMAT_KINDS:
        raise ServiceError(f"`kind` must be one of {', '.join(OUTPUT_FORMAT_KINDS)}.", field="output_format")
    kind = spec["kind"]
    if kind == "none":
        return {"kind": "none"}
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ServiceError("a regex output format needs a non-empty `pattern`.", field="output_format")
        if refusal := patterns.regex_refusal(pattern):
            raise ServiceError(f"`pattern` cannot be used: {refusal}", field="output_format")
        return {"kind": "regex", "pattern": pattern}
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise ServiceError("a json_schema output format needs a `schema` object.", field="output_format")
    if refusal := patterns.schema_refusal(schema):
        raise ServiceError(f"`schema` cannot be used: {refusal}", field="output_format")
    return {"kind": "json_schema", "schema": schema}


def labels_clean(labels: Any) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ServiceError("`labels` must be a list of strings.", field="labels")
    cleaned = [label.strip() for label in labels if label.strip()]
    if len(set(cleaned)) != len(cleaned):
        raise ServiceError("`labels` must not repeat a label.", field="labels")
    if any(len(label) > formats.MAX_LABEL_LENGTH for label in cleaned):
        raise ServiceError(f"a label is at most {formats.MAX_LABEL_LENGTH} characters.", field="labels")
    return cleaned


@transaction.atomic
def project_create(*, creator: AbstractBaseUser, name: str, slug: str, **fields: Any) -> Project:
    """Create a project; its creator becomes its lead."""
    if Project.objects.filter(slug=slug).exists():
        raise ServiceError(f"a project with slug {slug!r} already exists.", field="slug")
    project = Project(name=name, slug=slug)
    _project_assign(project, fields)
    project.save()
    Membership.objects.create(project=project, user=creator, role=Membership.Role.LEAD)
    return project


def project_update(*, project: Project, **fields: Any) -> Project:
    format_before = project.output_format
    _project_assign(project, fields)
    project.save()
    if project.output_format != format_before:
        quality_scan_start(project=project)  # every answer must be checked against the new format
    return project


def _project_assign(project: Project, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key == "labels":
            value = labels_clean(value)
        elif key == "output_format":
            value = output_format_clean(value)
        elif key == "reviews_required":
            if not isinstance(value, int) or not 1 <= value <= 5:
                raise ServiceError("`reviews_required` must be a whole number from 1 to 5.", field=key)
        elif key == "baseline_score":
            if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ServiceError("`baseline_score` is a share from 0 to 1.", field=key)
        elif key == "tokenizer":
            value = _tokenizer_clean(project, value)
        elif key not in {"name", "task_description", "system_prompt"}:
            raise ServiceError(f"unknown project field {key!r}.", field=key)
        setattr(project, key, value)
    if not project.output_format:
        project.output_format = {"kind": "none"}


def _tokenizer_clean(project: Project, value: Any) -> str:
    """A tokenizer is a model like a base model (core.server_paths): listed, a Hugging Face id or a folder under
    the models folder. The one already set stays, also as pages show it (its folder redacted)."""
    value = str(value or "").strip()
    if not value:
        return ""
    if project.tokenizer and value in (project.tokenizer, server_paths.redact(project.tokenizer)):
        return project.tokenizer
    try:
        return server_paths.model_source_check(value)
    except server_paths.ModelSourceError as error:
        raise ServiceError(f"tokenizer: {error}", field="tokenizer") from None


def project_tokenizer_adopt(*, project: Project, tokenizer: str) -> Project:
    """Count the project's tokens with the tokenizer of a base model a finished run trained from (a worker's own
    value: tiny-local's build folder included), and recount them."""
    project.tokenizer = tokenizer
    project.save(update_fields=["tokenizer", "updated_at"])
    quality_scan_start(project=project)
    return project


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add a member or change their role."""
    if role not in Membership.Role.values:
        raise ServiceError(f"`role` must be one of {', '.join(Membership.Role.values)}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


# --- Imports ---------------------------------------------------------------------------------------------------


@dataclass
class _ErrorSink:
    """Keeps the first `limit` errors for the report and counts them all."""

    limit: int
    errors: list[dict] = field(default_factory=list)
    count: int = 0

    def add(self, error: formats.LineError) -> None:
        self.count += 1
        if len(self.errors) < self.limit:
            self.errors.append(error.as_dict())


class _RollBack(Exception):
    pass


def import_limits() -> formats.Limits:
    return formats.Limits(
        max_line_bytes=settings.FINELINE_IMPORT_MAX_LINE_BYTES,
        max_tokens=settings.FINELINE_IMPORT_MAX_TOKENS,
        max_depth=settings.FINELINE_IMPORT_MAX_DEPTH,
    )


def import_examples(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    records: Iterable[formats.ParsedExample | formats.LineError],
    fmt: str = "auto",
    mode: str = ImportJob.Mode.ATOMIC,
    source: str = "api",
    mapping: formats.ColumnMapping | None = None,
) -> ImportJob:
    """Write the valid records of an import; exact duplicates (in the input or the project) are counted, not written.

    In atomic mode any error writes nothing; in partial mode the valid records are written. The ImportJob row keeps
    the counts and the line-numbered report either way, and its status says what came of it: succeeded (every line
    kept or a duplicate), partial (some lines rejected, the rest kept) or failed (nothing kept: an error in atomic
    mode, every line rejected, or no line at all). `mapping`, when the records were read through one, is recorded
    with the keys it ignored. formats.BodyTooLarge propagates after the job is marked failed.
    """
    if mode not in ImportJob.Mode.values:
        raise ServiceError(f"`mode` must be one of {', '.join(ImportJob.Mode.values)}.", field="mode")
    if fmt not in formats.FORMATS + formats.FILE_FORMATS:
        choices = ", ".join(formats.FORMATS + formats.FILE_FORMATS)
        raise ServiceError(f"`format` must be one of {choices}.", field="format")
    job = ImportJob.objects.create(
        project=project,
        created_by=user,
        format=fmt,
        mode=mode,
        source=source,
        mapping=mapping.as_dict() if mapping is not None else None,
    )
    sink = _ErrorSink(limit=settings.FINELINE_IMPORT_MAX_REPORTED_ERRORS)
    counted = _Counter(records)
    created = valid = 0
    try:
        with transaction.atomic():
            writer = _write_postgres if connection.vendor == "postgresql" else _write_batches
            valid, created = writer(project=project, job=job, records=counted, sink=sink, atomic=mode == "atomic")
            if sink.count and mode == ImportJob.Mode.ATOMIC:
                raise _RollBack
    except _RollBack:
        created = 0
    except formats.BodyTooLarge as error:
        sink.add(formats.LineError(counted.last_line + 1, "body_too_large", str(error)))
        _import_finish(job, counted, sink, valid=0, created=0, failed=True, mapping=mapping)
        raise
    if not counted.total:
        # Not counted as a rejected line: there was none. Line 0 stands for the input as a whole.
        sink.errors.append(formats.LineError(0, "no_examples", "the input holds no examples.").as_dict())
    failed = not counted.total or (bool(sink.count) and (mode == ImportJob.Mode.ATOMIC or not valid))
    _import_finish(job, counted, sink, valid=0 if failed else valid, created=created, failed=failed, mapping=mapping)
    if created:
        quality_scan_start(project=project)
    if created and connection.vendor == "postgresql":
        from .tasks import example_search_index

        # robust: the import is committed; a broker outage only delays search indexing, it must not fail the request.
        transaction.on_commit(lambda: example_search_index.delay(project.pk, created), robust=True)
    return job


class _Counter:
    """Counts the input lines as they stream past."""

    def __init__(self, records: Iterable[formats.ParsedExample | formats.LineError]):
        self._records = iter(records)
        self.total = 0
        self.last_line = 0

    def __iter__(self) -> Iterator[formats.ParsedExample | formats.LineError]:
        for record in self._records:
            self.total += 1
            self.last_line = record.line
            yield record


def _import_finish(
    job: ImportJob,
    counted: _Counter,
    sink: _ErrorSink,
    *,
    valid: int,
    created: int,
    failed: bool,
    mapping: formats.ColumnMapping | None = None,
):
    job.total_lines = counted.total
    job.created_count = created
    job.duplicate_count = valid - created
    job.rejected_count = sink.count
    job.errors = sink.errors
    job.errors_truncated = sink.count > len(sink.errors)
    ignored = mapping.ignored.most_common(100) if mapping else []
    job.ignored_keys = {formats.printable(key)[: formats.MAX_KEY_NAME]: n for key, n in ignored}
    if failed:
        job.status = ImportJob.Status.FAILED
    else:
        job.status = ImportJob.Status.PARTIAL if sink.count else ImportJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.save()


_EXAMPLE_COLUMNS = (
    "project_id, import_job_id, messages, label, tags, metadata, source, content_hash, status, version,"
    " created_at, updated_at"
)


def _write_postgres(*, project: Project, job: ImportJob, records, sink: _ErrorSink, atomic: bool) -> tuple[int, int]:
    """Stream the valid rows into a temporary table with one COPY, then insert the new ones in one statement.

    The unique index decides what is new (ON CONFLICT DO NOTHING): no query plan to go stale as a project grows,
    and a concurrent import of the same content waits for this one and skips it. The COPY is sent by a thread of
    its own (the queued writer), so PostgreSQL stores rows while Python parses the next ones.
    """
    stage = f"fl_import_stage_{job.pk}"
    seen: set[str] = set()
    valid = 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {stage} (line integer, messages jsonb, label text, tags jsonb, metadata jsonb,"
            " content_hash text) ON COMMIT DROP"
        )
        raw = cursor.cursor
        with raw.copy(f"COPY {stage} FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
            lines = []
            for record in records:
                if isinstance(record, formats.LineError):
                    sink.add(record)
                    continue
                if sink.count and atomic:
                    continue  # read on to report every error, but nothing will be written
                valid += 1
                if record.content_hash in seen:
                    continue
                seen.add(record.content_hash)
                # COPY's text format, built here: the JSON is bytes already and only needs its backslashes
                # doubled (orjson never emits a raw tab or newline), far cheaper than dumping every value.
                lines.append(
                    b"\t".join(
                        (
                            str(record.line).encode(),
                            record.messages_json.replace(b"\\", b"\\\\"),
                            _copy_text(record.label),
                            orjson.dumps(record.tags).replace(b"\\", b"\\\\") if record.tags else b"[]",
                            orjson.dumps(record.metadata).replace(b"\\", b"\\\\") if record.metadata else b"{}",
                            record.content_hash.encode(),
                        )
                    )
                )
                if len(lines) == 1000:
                    copy.write(b"\n".join(lines) + b"\n")
                    lines = []
            if lines:
                copy.write(b"\n".join(lines) + b"\n")
        if sink.count and atomic:
            return valid, 0
        cursor.execute(
            f"INSERT INTO {Example._meta.db_table} ({_EXAMPLE_COLUMNS})"
            f" SELECT %s, %s, messages, label, tags, metadata, %s, content_hash, %s, 1, now(), now() FROM {stage}"
            " ORDER BY line ON CONFLICT (project_id, content_hash) DO NOTHING",
            [project.pk, job.pk, job.source, ReviewStatus.PENDING],
        )
        created = cursor.rowcount
        cursor.execute(f"DROP TABLE {stage}")
    return valid, created


def _copy_text(value: str) -> bytes:
    """A text value escaped for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").encode()


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


def _write_batches(*, project: Project, job: ImportJob, records, sink: _ErrorSink, atomic: bool) -> tuple[int, int]:
    """Portable path (SQLite for `make run`): bulk inserts that skip rows whose content hash exists."""
    before = Example.objects.filter(project=project).count()
    valid = 0
    iterator = iter(records)
    while batch := list(islice(iterator, 1000)):
        rows = []
        for record in batch:
            if isinstance(record, formats.LineError):
                sink.add(record)
            elif not (sink.count and atomic):
                valid += 1
                rows.append(
                    Example(
                        project=project,
                        import_job=job,
                        messages=record.messages,
                        label=record.label,
                        tags=record.tags,
                        metadata=record.metadata,
                        source=job.source,
                        content_hash=record.content_hash,
                    )
                )
        if rows and not (sink.count and atomic):
            Example.objects.bulk_create(rows, ignore_conflicts=True)
    return valid, Example.objects.filter(project=project).count() - before


# --- Word search ------------------------------------------------------------------------------------------------

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


def _example_search_refresh(example_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Example._meta.db_table} SET search_vector = {SEARCH_VECTOR_SQL} WHERE id = %s", [example_id]
            )


# --- Editing examples ------------------------------------------------------------------------------------------

EDITABLE_FIELDS = ("messages", "label", "tags", "metadata", "status")
# Edits and restores that set `status` skip the review's rules (how many reviews, agreement): leads only.
STATUS_BY_LEAD_ONLY = frozenset({Revision.Kind.EDIT, Revision.Kind.RESTORE})


def is_lead(*, project: Project, user: AbstractBaseUser | None) -> bool:
    if user is None:
        return True  # the system itself (demo loader, migrations)
    if user.is_superuser:
        return True
    return Membership.objects.filter(project=project, user=user, role=Membership.Role.LEAD).exists()


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
    values = _example_clean(example.project, changes)
    with transaction.atomic():
        _revision_initial(example)
        update = Example.objects.filter(pk=example.pk, version=version)
        try:
            # Only new messages can collide with the unique content hash; only then is a savepoint worth its cost.
            with transaction.atomic() if "messages" in values else nullcontext():
                updated = update.update(**values, version=F("version") + 1, updated_at=timezone.now())
        except IntegrityError:
            raise ServiceError("these messages duplicate another example of the project.", field="messages")
        if not updated:
            raise VersionConflict(Example.objects.get(pk=example.pk))
        if "messages" in values:
            _example_search_refresh(example.pk)
        for key, value in values.items():
            setattr(example, key, value)
        example.version = version + 1
        _revision_save(example, kind=kind, author=user, comment=comment)
    return example


def _revision_save(example: Example, *, kind: str, author, comment: str = "") -> Revision:
    """Keep the example's current state as a revision."""
    revision = _revision_of(example, kind=kind, author_id=author.pk if author else None, comment=comment)
    revision.save(force_insert=True)
    return revision


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


def _example_clean(project: Project, changes: dict[str, Any]) -> dict[str, Any]:
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
            duplicate = (
                Example.objects.filter(project=project, content_hash=values["content_hash"])
                .values_list("pk", flat=True)
                .first()
            )
            if duplicate is not None:
                raise ServiceError(f"these messages duplicate example #{duplicate}.", field="messages")
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


def _revision_initial(example: Example) -> None:
    """Keep the state an example had before its first change (imports write no revision, to stay fast).

    Any change past version 1 has stored it already. A concurrent first edit may be storing it right now: the
    insert then does nothing (ON CONFLICT), and if this edit's version turns out stale, it all rolls back anyway.
    """
    if example.version != 1:
        return
    author_id = example.import_job.created_by_id if example.import_job_id else None
    Revision.objects.bulk_create(
        [_revision_of(example, kind=Revision.Kind.IMPORT, author_id=author_id, created_at=example.created_at)],
        ignore_conflicts=True,
    )


# --- Review -------------------------------------------------------------------------------------------------------


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


# --- Quality scan: near duplicates, format conformance, token lengths ------------------------------------------

TOKEN_BUCKETS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


def quality_scan_start(*, project: Project, threshold: float | None = None) -> QualityScan:
    """Queue a scan of the project (one at a time: a scan already queued serves the new request too).

    threshold: the Jaccard similarity from which two examples count as near duplicates (default 0.85)."""
    if threshold is None:
        threshold = quality.THRESHOLDS.near_duplicate_threshold
    if not 0.5 <= threshold <= 1:
        raise ServiceError("the near-duplicate threshold must be between 0.5 and 1.", field="threshold")
    queued = QualityScan.objects.filter(project=project, status=QualityScan.Status.QUEUED).first()
    if queued is not None:
        if queued.threshold != threshold:
            queued.threshold = threshold
            queued.save(update_fields=["threshold"])
        return queued
    scan = QualityScan.objects.create(project=project, threshold=threshold)
    from .tasks import quality_scan_run as task

    transaction.on_commit(lambda: task.delay(scan.pk), robust=True)
    return scan


def quality_scan_run(*, scan: QualityScan) -> QualityScan:
    """Cluster exact and near duplicates, check every last answer against the output format, and histogram the
    token lengths per role (counted with the project's tokenizer, else estimated); keep the longest examples with
    their lengths as a run sees them (chat template included); store clusters and format results on the examples."""
    project = scan.project
    scan.status, scan.started_at = QualityScan.Status.RUNNING, timezone.now()
    scan.save(update_fields=["status", "started_at"])
    try:
        fits = formats.answer_checker(project.output_format)
        histogram = {role: [0] * len(TOKEN_BUCKETS) for role in ("system", "user", "assistant")}
        too_long = 0
        format_changes: dict[int, bool | None] = {}
        count = 0

        counter = _token_counter(project)
        longest: list[tuple[int, int]] = []  # a min-heap of (tokens, id): the LONGEST_KEPT longest examples
        characters = tokens_counted = 0
        example_histogram = [0] * len(TOKEN_BUCKETS)

        def examples():
            nonlocal too_long, count
            rows = Example.objects.filter(project=project).order_by("id")
            chunk: list[tuple[int, list[dict], bool | None]] = []
            for row in rows.values_list("id", "messages", "format_ok").iterator(5000):
                chunk.append(row)
                if len(chunk) == 1000:
                    yield from checked(chunk)
                    chunk = []
            yield from checked(chunk)

        def checked(chunk):
            nonlocal too_long, count, characters, tokens_counted
            lengths = iter(counter.count([message["content"] for _, messages, _ in chunk for message in messages]))
            for example_id, messages, format_ok in chunk:
                count += 1
                total = counter.per_example + sum(counter.per_role.get(m["role"], 0) for m in messages)  # template
                for message in messages:
                    tokens = next(lengths)
                    total += tokens
                    characters, tokens_counted = characters + len(message["content"]), tokens_counted + tokens
                    role = message["role"] if message["role"] in histogram else "user"
                    histogram[role][bisect.bisect_right(TOKEN_BUCKETS, tokens) - 1] += 1
                too_long += total > project.max_seq_length
                example_histogram[bisect.bisect_right(TOKEN_BUCKETS, total) - 1] += 1
                if len(longest) < LONGEST_KEPT:
                    heapq.heappush(longest, (total, example_id))
                elif total > longest[0][0]:
                    heapq.heapreplace(longest, (total, example_id))
                ok = fits(formats.last_answer(messages)) if fits else None
                if ok != format_ok:
                    format_changes[example_id] = ok
                yield example_id, messages

        clusters = quality.duplicate_clusters(examples(), threshold=scan.threshold)
        with transaction.atomic():
            Example.objects.filter(project=project, cluster_id__isnull=False).update(cluster_id=None)
            _update_column(project, "cluster_id", clusters)
            _update_column(project, "format_ok", format_changes)
        scan.examples = count
        # Counted as everywhere else (selectors.duplicate_clusters): rejected members do not make a cluster.
        totals = selectors.duplicate_cluster_totals(project=project)
        scan.clusters, scan.clustered_examples = totals["clusters"], totals["examples"]
        latest = DatasetVersion.objects.filter(project=project).order_by("-number").first()
        scan.stats = {
            # The latest version's clusters across splits, as these clusters see it (readiness: no_leakage).
            "leaks": {str(latest.pk): _version_leaks(latest)} if latest else {},
            "estimate": counter.label,
            "exact": counter.exact,
            "error": counter.error,  # the estimate's expected relative error (low, high); None when counted
            "buckets": TOKEN_BUCKETS,
            "histogram": histogram,  # per message, its content's tokens
            # Per example: the contents and the chat template's tokens, as a run's sequence (selectors.
            # over_length_examples names the examples over any max length from these).
            "template_tokens": {"per_example": counter.per_example, **counter.per_role},
            "example_histogram": example_histogram,
            "longest": [[example_id, tokens] for tokens, example_id in sorted(longest, reverse=True)],
            "longest_kept": LONGEST_KEPT,
            "too_long": too_long,
            "max_seq_length": project.max_seq_length,
            # The project's own ratio, for estimates from characters (a run's tokens an epoch in its pre-flight).
            "chars_per_token": round(characters / tokens_counted, 3) if tokens_counted else None,
        }
        scan.status = QualityScan.Status.SUCCEEDED
    except Exception as error:
        scan.status, scan.error = QualityScan.Status.FAILED, server_paths.redact(f"{type(error).__name__}: {error}")
        raise
    finally:
        scan.finished_at = timezone.now()
        scan.save()
    return scan


# The estimate, when no tokenizer counts: a byte-level BPE gives a short word one token and splits a long one into
# pieces of about two bytes past its first seven, gives each symbol its own token and groups digits by three.
# Measured against byte-level BPE tokenizers trained on the texts themselves (tiny-local's 2,048 tokens) on support
# tickets, English prose and Python code: 1.01-1.23x their totals, and 90% of single texts within -25%/+30%. UTF-8
# bytes / 4, the former estimate, was 0.71-1.12x (0.71x on prose). A large vocabulary (Llama 3, Qwen) counts
# fewer tokens than either on English prose.
ESTIMATE_ERROR = (-0.25, 0.30)
ESTIMATE_SCALE = 1.1
# Tokens a chat template adds per example (a beginning-of-text token) and around each message by its role (role
# markers, end of turn).
ESTIMATE_TEMPLATE = (1, {"system": 4, "user": 4, "assistant": 4})
ESTIMATE_LABEL = (
    "tokens estimated from words, numbers and symbols (expected within -25%/+30% of a BPE tokenizer's count; a "
    "large vocabulary such as Llama 3's counts fewer): set the project's tokenizer to count them exactly"
)
LONGEST_KEPT = 1000  # the longest examples a scan names (with their token counts), longest first
_WORDS = re.compile(r"[^\W\d_]+")
_LONG_WORDS = re.compile(r"[^\W\d_]{8,}")
_NUMBERS = re.compile(r"\d+")
_SYMBOLS = re.compile(r"[^\w\s]|_")
_LINE_BREAKS = re.compile(r"\s*\n\s*")


def token_estimate(text: str) -> int:
    """Tokens a BPE tokenizer would give `text`, estimated (see ESTIMATE_ERROR) without one."""
    ascii_only = text.isascii()
    tokens = len(_WORDS.findall(text))
    for word in _LONG_WORDS.findall(text):
        size = len(word) if ascii_only else len(word.encode())
        tokens += -(-(size - 7) // 2) if size > 7 else 0
    tokens += sum(-(-len(number) // 3) for number in _NUMBERS.findall(text))
    tokens += len(_SYMBOLS.findall(text)) + len(_LINE_BREAKS.findall(text))
    return math.ceil(tokens * ESTIMATE_SCALE)


@dataclass
class _TokenCounter:
    count: Any  # texts -> their token counts
    label: str
    exact: bool
    error: tuple[float, float] | None
    per_example: int  # tokens the chat template adds once per example (a beginning-of-text token...)
    per_role: dict[str, int]  # and around each message, by its role


def _token_counter(project: Project) -> _TokenCounter:
    """Token lengths of many texts at once, with the project's tokenizer when it loads (offline), else estimated."""

    def estimate(texts: list[str]) -> list[int]:
        return [token_estimate(text) for text in texts]

    if not project.tokenizer:
        return _TokenCounter(estimate, ESTIMATE_LABEL, False, ESTIMATE_ERROR, *ESTIMATE_TEMPLATE)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(project.tokenizer)
    except Exception as error:  # not downloaded, not a tokenizer: the estimate, and say why
        logger.warning("tokenizer %r did not load: %s", project.tokenizer, error)
        label = f"{ESTIMATE_LABEL} (the tokenizer {server_paths.redact(project.tokenizer)} did not load)"
        return _TokenCounter(estimate, label, False, ESTIMATE_ERROR, *ESTIMATE_TEMPLATE)

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    label = f"tokens counted with the tokenizer of {server_paths.redact(project.tokenizer)}"
    return _TokenCounter(count, label, True, None, *_template_tokens(tokenizer))


def _template_tokens(tokenizer) -> tuple[int, dict[str, int]]:
    """The tokens the tokenizer's chat template adds per conversation and around a message of each role, measured
    on four probes; the estimate's when it has no template (or one that refuses the probes)."""
    content = len(tokenizer("hello", add_special_tokens=False)["input_ids"])
    system, user, assistant = ({"role": role, "content": "hello"} for role in ("system", "user", "assistant"))
    probes = ([user], [user, assistant], [user, assistant, user, assistant], [system, user, assistant])
    try:
        alone, turn, two, with_system = (
            len(tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True)["input_ids"])
            - content * len(probe)
            for probe in probes
        )
    except Exception:  # no chat template
        return ESTIMATE_TEMPLATE
    per_example = max(0, 2 * turn - two)
    user_tokens = max(0, alone - per_example)
    per_role = {"system": with_system - turn, "user": user_tokens, "assistant": two - turn - user_tokens}
    return per_example, {role: max(0, tokens) for role, tokens in per_role.items()}


def _version_leaks(version: DatasetVersion) -> int:
    """Near-duplicate clusters whose members sit in more than one split of the version."""
    clustered = Example.objects.filter(project_id=version.project_id, cluster_id__isnull=False)
    return (
        DatasetVersionItem.objects.filter(version=version, example__in=clustered)
        .values("example__cluster_id")
        .annotate(splits=Count("split", distinct=True))
        .filter(splits__gt=1)
        .count()
    )


def _update_column(project: Project, column: str, values: dict[int, Any]) -> None:
    """Set one column of many examples, ten thousand per statement."""
    items = list(values.items())
    for start in range(0, len(items), 10_000):
        chunk = items[start : start + 10_000]
        if connection.vendor == "postgresql":
            kind = "bigint" if column == "cluster_id" else "boolean"
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Example._meta.db_table} AS e SET {column} = v.value FROM unnest(%s::bigint[],"
                    f" %s::{kind}[]) AS v(id, value) WHERE e.id = v.id AND e.project_id = %s",
                    [[key for key, _ in chunk], [value for _, value in chunk], project.pk],
                )
        else:
            for key, value in chunk:
                Example.objects.filter(pk=key, project=project).update(**{column: value})


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


# --- Dataset versions ----------------------------------------------------------------------------------------------


def dataset_version_freeze(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    train: float = 0.8,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    max_per_label: int | None = None,
) -> DatasetVersion:
    """Freeze the approved examples into an immutable, stratified, group-aware train/val/test split.

    max_per_label balances the labels: surplus examples of over-represented labels are left out, chosen by the
    same seeded order (deterministic). Near-duplicate clusters (from the last quality scan) stay in one split.
    """
    shares = (train, val, test)
    # NaN passes every comparison (a frozen nan share made the versions' list a 500 for good): finite numbers only.
    if any(not isinstance(share, (int, float)) or not math.isfinite(share) or share < 0 for share in shares) or not (
        abs(sum(shares) - 1) <= 1e-6
    ):
        raise ServiceError("train, val and test must be non-negative shares that add up to 1.", field="train")
    if train <= 0:
        raise ServiceError("the train share must be above 0.", field="train")
    if max_per_label is not None and max_per_label < 1:
        raise ServiceError("max_per_label must be at least 1.", field="max_per_label")
    if not -(2**31) <= seed < 2**31 or (max_per_label is not None and max_per_label >= 2**31):
        raise ServiceError("the seed and max_per_label must fit in 32 bits.", field="seed")
    rows = (
        Example.objects.filter(project=project, status=ReviewStatus.APPROVED)
        .order_by("id")
        .values_list("id", "label", "cluster_id")
    )
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for example_id, label, cluster_id in rows.iterator(10_000):
        members[cluster_id or example_id].append((example_id, label))
    if max_per_label is not None:
        members = _capped(members, max_per_label=max_per_label, seed=seed)
    if not members:
        raise ServiceError("there is no approved example to freeze.")
    strata = (
        (group, Counter(label for _, label in group_members).most_common(1)[0][0], len(group_members))
        for group, group_members in members.items()
    )
    splits = quality.assign_splits(strata, train=train, val=val, seed=seed)
    assignment = sorted((example_id, splits[group]) for group, items in members.items() for example_id, _ in items)
    labels = {example_id: label for items in members.values() for example_id, label in items}
    counts: dict[str, Any] = {split: {"total": 0, "labels": Counter()} for split in ("train", "val", "test")}
    for example_id, split in assignment:
        counts[split]["total"] += 1
        counts[split]["labels"][labels[example_id] or "(none)"] += 1
    counts = {split: {"total": c["total"], "labels": dict(c["labels"])} for split, c in counts.items()}
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one freeze at a time per project
        number = (DatasetVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(
            project=project,
            number=number,
            created_by=user,
            seed=seed,
            train_share=train,
            val_share=val,
            test_share=test,
            max_per_label=max_per_label,
            counts=counts,
            content_hash="",
        )
        _version_items_write(version, assignment)
        version.content_hash = _version_hash(version)
        version.save(update_fields=["content_hash"])
    return version


def _capped(members: dict[int, list], *, max_per_label: int, seed: int) -> dict[int, list]:
    """Keep at most max_per_label examples of each label, the first ones in a seeded order."""
    kept: dict[str, int] = Counter()
    result: dict[int, list] = defaultdict(list)
    ordered = sorted(
        (
            (quality.group_rank(seed, example_id), group, example_id, label)
            for group, items in members.items()
            for example_id, label in items
        )
    )
    for _, group, example_id, label in ordered:
        if kept[label] < max_per_label:
            kept[label] += 1
            result[group].append((example_id, label))
    return result


def _version_items_write(version: DatasetVersion, assignment: list[tuple[int, str]]) -> None:
    """Copy each example's content into the version, in the database, ten thousand at a time."""
    table = DatasetVersionItem._meta.db_table
    for start in range(0, len(assignment), 10_000):
        chunk = assignment[start : start + 10_000]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (version_id, example_id, split, content_hash, messages, label)"
                    f" SELECT %s, e.id, v.split, e.content_hash, e.messages, e.label FROM {Example._meta.db_table} e"
                    " JOIN unnest(%s::bigint[], %s::text[]) AS v(id, split) ON v.id = e.id ORDER BY e.id",
                    [version.pk, [example_id for example_id, _ in chunk], [split for _, split in chunk]],
                )
        else:
            split_of = dict(chunk)
            examples = Example.objects.filter(pk__in=split_of).values_list("id", "content_hash", "messages", "label")
            DatasetVersionItem.objects.bulk_create(
                DatasetVersionItem(
                    version=version,
                    example_id=example_id,
                    split=split_of[example_id],
                    content_hash=content,
                    messages=messages,
                    label=label,
                )
                for example_id, content, messages, label in examples
            )


def _version_hash(version: DatasetVersion) -> str:
    digest = hashlib.sha256()
    items = version.items.order_by("example_id").values_list("example_id", "content_hash", "split")
    for example_id, content, split in items.iterator(10_000):
        digest.update(f"{example_id}:{content}:{split}\n".encode())
    return digest.hexdigest()


def dataset_version_save_hf(*, version: DatasetVersion, path: Path) -> Path:
    """Write a frozen version as a Hugging Face `datasets` folder (DatasetDict with train/val/test, save_to_disk).

    Each split is streamed from the database into Arrow files (Dataset.from_generator), never held whole.
    """
    import datasets

    features = datasets.Features(
        {
            "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
            "label": datasets.Value("string"),
        }
    )

    def rows(split: str):
        items = version.items.filter(split=split).order_by("id").values_list("messages", "label")
        for messages, label in items.iterator(2000):
            yield {"messages": [{"role": m["role"], "content": m["content"]} for m in messages], "label": label}

    with tempfile.TemporaryDirectory() as cache:
        splits = {}
        for split in DatasetVersionItem.Split.values:
            splits[split] = datasets.Dataset.from_generator(
                rows, gen_kwargs={"split": split}, features=features, cache_dir=cache, keep_in_memory=False
            )
        datasets.DatasetDict(splits).save_to_disk(str(path))
    return path
