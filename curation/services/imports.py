"""Writes of an import: valid records streamed into a project's examples, the report kept on an ImportJob."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from core.errors import ServiceError

from .. import formats
from ..models import Example, ImportJob, Project, ReviewStatus
from .scans import quality_scan_start


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
    job: ImportJob | None = None,
) -> ImportJob:
    """Write the valid records of an import; exact duplicates (in the input or the project) are counted, not written.

    In atomic mode any error writes nothing; in partial mode the valid records are written. The ImportJob row keeps
    the counts and the line-numbered report either way, and its status says what came of it: succeeded (every line
    kept or a duplicate), partial (some lines rejected, the rest kept) or failed (nothing kept: an error in atomic
    mode, every line rejected, or no line at all). `mapping`, when the records were read through one, is recorded
    with the keys it ignored. formats.BodyTooLarge propagates after the job is marked failed. `job`, when given, is
    the queued import a worker runs (import_jobs.import_job_run): it carries the format, mode, source and mapping.
    """
    mode_clean(mode)
    if fmt not in formats.FORMATS + formats.FILE_FORMATS:
        choices = ", ".join(formats.FORMATS + formats.FILE_FORMATS)
        raise ServiceError(f"`format` must be one of {choices}.", field="format")
    if job is None:
        job = import_job_create(project=project, user=user, fmt=fmt, mode=mode, source=source, mapping=mapping)
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
        from ..tasks import example_search_index

        # robust: the import is committed; a broker outage only delays search indexing, it must not fail the request.
        transaction.on_commit(lambda: example_search_index.delay(project.pk, created), robust=True)
    return job


def mode_clean(mode: str) -> None:
    if mode not in ImportJob.Mode.values:
        raise ServiceError(f"`mode` must be one of {', '.join(ImportJob.Mode.values)}.", field="mode")


def import_job_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    fmt: str,
    mode: str,
    source: str,
    mapping: formats.ColumnMapping | None,
    status: str = ImportJob.Status.RUNNING,
) -> ImportJob:
    """The ImportJob row of an import, in the request (running) or queued for a worker."""
    return ImportJob.objects.create(
        project=project,
        created_by=user,
        format=fmt,
        mode=mode,
        source=source,
        mapping=mapping.as_dict() if mapping is not None else None,
        status=status,
    )


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
    # The report's fields only: a worker's job row also carries its lease and progress, which others write.
    job.save(update_fields=[*_REPORT_FIELDS, "status", "finished_at"])


_REPORT_FIELDS = (
    "total_lines",
    "created_count",
    "duplicate_count",
    "rejected_count",
    "errors",
    "errors_truncated",
    "ignored_keys",
)


_EXAMPLE_COLUMNS = (
    "project_id, import_job_id, messages, label, tags, metadata, source, content_hash, status, version,"
    " created_at, updated_at"
)


# A chunk of the COPY goes to the database once it holds this many rows or bytes (whichever comes first): small
# enough that the stage stays in temp_buffers and a chunk's sort and the counter trigger's transition table in
# work_mem, large enough that the four statements of a chunk cost little beside its rows.
_CHUNK_ROWS = 5000
_CHUNK_BYTES = 4 << 20


def _write_postgres(*, project: Project, job: ImportJob, records, sink: _ErrorSink, atomic: bool) -> tuple[int, int]:
    """Stream the valid rows into the examples, a chunk at a time: each chunk is COPYed into a temporary stage table,
    then the new rows are inserted in one statement.

    The unique index decides what is new (ON CONFLICT DO NOTHING): no query plan to go stale as a project grows,
    and a concurrent import of the same content waits for this one and skips it. A thread of its own writes each
    chunk (_ChunkWriter) while this one parses the next, so PostgreSQL stores rows while Python reads them.
    """
    stage = f"fl_import_stage_{job.pk}"
    seen: set[str] = set()
    valid = 0
    with connection.cursor() as cursor:
        # For this transaction only: a chunk's sort by line and the counter trigger's transition table fit in
        # memory instead of spilling to temporary files (4 MB, the default, is less than one chunk).
        cursor.execute("SET LOCAL work_mem = '32MB'")
        # The foreign keys (to the project, to a lock holder) are checked as each chunk is written, by the writer
        # thread while this one parses, rather than all at COMMIT after the last line (a second a 100,000 rows).
        cursor.execute(
            "SELECT string_agg(quote_ident(conname), ', ') FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype = 'f' AND condeferred",
            [Example._meta.db_table],
        )
        deferred = cursor.fetchone()[0]
        if deferred:
            cursor.execute(f"SET CONSTRAINTS {deferred} IMMEDIATE")
        cursor.execute(
            f"CREATE TEMP TABLE {stage} (line integer, messages jsonb, label text, tags jsonb, metadata jsonb,"
            " content_hash text) ON COMMIT DROP"
        )
        insert = (
            f"INSERT INTO {Example._meta.db_table} ({_EXAMPLE_COLUMNS})"
            f" SELECT %s, %s, messages, label, tags, metadata, %s, content_hash, %s, 1, now(), now() FROM {stage}"
            " ORDER BY line ON CONFLICT (project_id, content_hash) DO NOTHING"
        )
        writer = _ChunkWriter(cursor.cursor, stage, insert, [project.pk, job.pk, job.source, ReviewStatus.PENDING])
        writer.start()
        try:
            lines: list[bytes] = []
            size = 0
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
                line = b"\t".join(
                    (
                        str(record.line).encode(),
                        record.messages_json.replace(b"\\", b"\\\\"),
                        _copy_text(record.label),
                        orjson.dumps(record.tags).replace(b"\\", b"\\\\") if record.tags else b"[]",
                        orjson.dumps(record.metadata).replace(b"\\", b"\\\\") if record.metadata else b"{}",
                        record.content_hash.encode(),
                    )
                )
                lines.append(line)
                size += len(line)
                if len(lines) == _CHUNK_ROWS or size >= _CHUNK_BYTES:
                    writer.send(b"\n".join(lines) + b"\n")
                    lines, size = [], 0
            if lines and not (sink.count and atomic):
                writer.send(b"\n".join(lines) + b"\n")
        except BaseException:
            writer.close(cancel=True)
            raise
        writer.close()
        if deferred:
            cursor.execute(f"SET CONSTRAINTS {deferred} DEFERRED")  # as they were, for a transaction that goes on
        if sink.count and atomic:
            return valid, 0
        cursor.execute(f"DROP TABLE {stage}")
    return valid, writer.created


class _ChunkWriter(threading.Thread):
    """Writes the chunks of an import, in order, on the import's connection (which no one else uses meanwhile):
    COPY into the stage, INSERT the new rows, empty the stage. The database's wait releases the GIL, so the
    thread that parses runs on. An error stops the writing and is raised again by send() or close()."""

    def __init__(self, cursor, stage: str, insert: str, params: list):
        super().__init__(name=f"import-{stage}", daemon=True)
        self.cursor, self.stage, self.insert, self.params = cursor, stage, insert, params
        # Two chunks queued at most: the parser runs at most that far ahead, and memory stays bounded.
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.created = 0
        self.error: BaseException | None = None
        self.cancelled = False

    def run(self) -> None:
        while (chunk := self.chunks.get()) is not None:
            if self.error is not None or self.cancelled:
                continue  # drain, so that send() never blocks on a writer that stopped
            try:
                with self.cursor.copy(f"COPY {self.stage} FROM STDIN") as copy:
                    copy.write(chunk)
                self.cursor.execute(self.insert, self.params)
                self.created += self.cursor.rowcount
                self.cursor.execute(f"TRUNCATE {self.stage}")
            except BaseException as error:  # noqa: BLE001 (raised again in the thread that called send)
                self.error = error

    def send(self, chunk: bytes) -> None:
        self._raise()
        self.chunks.put(chunk)

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the chunks sent to be written (with `cancel`, skip those not started yet); raise its error."""
        self.cancelled = cancel
        self.chunks.put(None)
        self.join()
        if not cancel:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            with connection.wrap_database_errors:  # as Django's own cursor would have raised it
                raise self.error


def _copy_text(value: str) -> bytes:
    """A text value escaped for COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").encode()


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
