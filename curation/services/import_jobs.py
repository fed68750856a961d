"""Imports too large to parse within a web request: the body is spooled to a file and a worker imports it.

The request only copies the body to `$FINELINE_VAR_DIR/imports/<job id>.<kind>`, in chunks, and answers 202 with the
job (`queued`); a worker on the `default` queue reads the file with the same readers and writes it with the same
writer as the synchronous path (imports.import_examples), so the report and statuses are the same. The worker holds
the job through a lease (core.leases) like a training run: a crash or a time limit ends it `failed` with the reason,
and one whose worker died is started once more (nothing of it was written: an import writes in one transaction).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core import leases, server_paths
from core.errors import ServiceError

from .. import formats
from ..models import ImportJob, Project
from .imports import import_examples, import_job_create, import_limits, mode_clean

logger = logging.getLogger(__name__)

SPOOL_CHUNK = 1 << 20  # bytes copied at a time: the body is never whole in memory
PROGRESS_EVERY = 1000  # rows between two progress readings; the row itself is written at most once a second
SPOOL_KINDS = ("jsonl", "json", "csv", "parquet")  # what formats.read_rows reads; the spool file's suffix
MAX_ATTEMPTS = 2  # starts of an import: one more after a lost worker; a body that kills its worker twice fails


def import_spool_folder() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def import_spool_path(job: ImportJob) -> Path | None:
    """Where a queued import's body lies (its name ends with the kind it was read as); None once it is gone."""
    return next(import_spool_folder().glob(f"{job.pk}.*"), None)


def import_job_queue(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    stream: IO[bytes],
    kind: str,
    fmt: str = "auto",
    mode: str = ImportJob.Mode.ATOMIC,
    source: str = "api",
    mapping: formats.ColumnMapping | None = None,
) -> ImportJob:
    """Spool an import's body (`kind`: jsonl, json, csv or parquet) to a file and queue the job for a worker.

    The job says `queued`; one the broker would not take says `failed` with the reason. A body over
    FINELINE_IMPORT_MAX_BODY_BYTES fails the job (its report says so) and formats.BodyTooLarge propagates.
    """
    mode_clean(mode)
    if kind not in SPOOL_KINDS or fmt not in formats.FORMATS + formats.FILE_FORMATS:
        raise ServiceError(f"cannot import a {kind} body read as {fmt}.", field="format")
    job = import_job_create(
        project=project, user=user, fmt=fmt, mode=mode, source=source, mapping=mapping, status=ImportJob.Status.QUEUED
    )
    folder = import_spool_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job.pk}.{kind}"
    limit = settings.FINELINE_IMPORT_MAX_BODY_BYTES
    size = 0
    try:
        with path.open("wb") as spool:
            while chunk := stream.read(SPOOL_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise formats.BodyTooLarge(f"the body is over the limit of {limit} bytes.")
                spool.write(chunk)
    except formats.BodyTooLarge as error:
        path.unlink(missing_ok=True)
        report = [formats.LineError(0, "body_too_large", str(error)).as_dict()]
        _import_job_end(job, ImportJob.Status.FAILED, errors=report)
        raise
    except Exception as error:  # the client went away mid-body, the disk is full...
        path.unlink(missing_ok=True)
        _import_job_end(job, ImportJob.Status.FAILED, error=_reason(error))
        raise
    job.size_bytes, job.lease_until = size, leases.awaited(ImportJob)
    ImportJob.objects.filter(pk=job.pk).update(size_bytes=job.size_bytes, lease_until=job.lease_until)
    _enqueue(job.pk, job=job)
    return job


def _import_job_end(job: ImportJob, status: str, **changes) -> None:
    ImportJob.objects.filter(pk=job.pk).update(**leases.finished(status, **changes))


def _reason(error: BaseException) -> str:
    return server_paths.redact(f"{type(error).__name__}: {error}")


def _enqueue(job_id: int, job: ImportJob | None = None) -> None:
    """Send the job to a worker once committed; `job`, the caller's copy, is told when the broker refused it (the
    row is not read back: a worker may already have taken, even finished, the import)."""
    from ..tasks import import_run

    def send() -> None:
        try:
            import_run.apply_async(args=[job_id], queue="default")
        except Exception as error:  # the broker is unreachable: say so on the job rather than leave it queued
            logger.exception("could not queue import #%s", job_id)
            failed = leases.finished(ImportJob.Status.FAILED, error=f"it could not be queued for a worker: {error}")
            ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(**failed)
            _spool_remove(job_id)
            if job is not None:
                for name, value in failed.items():
                    setattr(job, name, value)

    transaction.on_commit(send)


def _spool_remove(job_id: int) -> None:
    for path in import_spool_folder().glob(f"{job_id}.*"):
        path.unlink(missing_ok=True)


def import_job_run(*, job_id: int, worker: str | None = None) -> ImportJob | None:
    """Import a queued job's spooled body, as the synchronous path imports a request's; None if another worker
    holds it. The job's `total_lines` and `read_bytes` grow as it goes; the spool file is deleted at the end."""
    worker = worker or leases.worker_name()
    if not leases.claim(ImportJob, job_id, worker):
        return None
    ImportJob.objects.filter(pk=job_id).update(attempts=F("attempts") + 1, total_lines=0, read_bytes=0, error="")
    if connection.vendor != "postgresql":
        # SQLite has one writer, and the import is it from start to end: no heartbeat could renew the lease. The task
        # cannot outlive its time limit (prefork), so a lease that long never expires under a live worker.
        until = timezone.now() + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        leases.held(ImportJob, job_id, worker).update(lease_until=until)
    job = ImportJob.objects.select_related("project", "created_by").get(pk=job_id)
    path = import_spool_path(job)
    progress = _Progress(job_id, worker)
    try:
        if path is None:
            raise FileNotFoundError("its spooled body is gone from $FINELINE_VAR_DIR/imports/")
        mapping = formats.mapping_parse(job.mapping) if job.mapping is not None else None
        with path.open("rb") as stream:
            records = formats.read_input(
                path.suffix[1:],
                stream,
                fmt=job.format,
                labels=job.project.labels,
                limits=import_limits(),
                max_body_bytes=settings.FINELINE_IMPORT_MAX_BODY_BYTES,
                mapping=mapping,
            )
            if connection.vendor == "postgresql":
                progress.start()
            import_examples(
                project=job.project,
                user=job.created_by,
                records=progress.track(records, stream),
                fmt=job.format,
                mode=job.mode,
                source=job.source,
                mapping=mapping,
                job=job,
            )
    except formats.BodyTooLarge:
        pass  # import_examples ended the job failed, its report saying so
    except leases.LeaseLost:
        return None  # cut off past its lease: the worker that took the import over owns it, and its file
    except Exception as error:  # a crash, or the task's time limit: the job says why, nothing was written
        leases.held(ImportJob, job_id, worker).update(**leases.finished(ImportJob.Status.FAILED, error=_reason(error)))
        _spool_remove(job_id)
        raise
    finally:
        progress.stopped.set()
        if progress.is_alive():
            progress.join()
    leases.held(ImportJob, job_id, worker).update(lease_until=None, read_bytes=F("size_bytes"))
    _spool_remove(job_id)
    job.refresh_from_db()
    return job


class _Progress(leases.Heartbeat):
    """The lease's heartbeat of a running import, every FINELINE_IMPORT_PROGRESS_SECONDS (1 s), which also writes its
    progress (rows and bytes read): from a connection of its own, as the import writes its rows in one transaction,
    which would hide progress written from within it. A worker whose lease is gone stops the import at its next
    reading (LeaseLost)."""

    @property
    def interval(self) -> float:
        return settings.FINELINE_IMPORT_PROGRESS_SECONDS

    def __init__(self, job_id: int, worker: str):
        super().__init__(ImportJob, job_id, worker)
        self.lines = self.read = 0

    def track(self, records, stream: IO[bytes]):
        for count, record in enumerate(records, 1):
            if count % PROGRESS_EVERY == 0:
                self.lines, self.read = count, stream.tell()
                if self.lost:
                    raise leases.LeaseLost(f"import #{self.job_id} is no longer held by {self.worker}")
            yield record

    def changes(self) -> dict:
        return {"total_lines": self.lines, "read_bytes": self.read}


def import_jobs_recover() -> int:
    """Requeue the imports whose worker died (lease expired while running): nothing of theirs was written, so they
    start over, once; one that lost its worker MAX_ATTEMPTS times, or its file, is failed. An import still queued a
    lease length after it was queued (its broker message lost, or every worker busy) is sent again. Spool files of
    imports no longer queued or running are deleted. Returns how many imports were sent again."""
    count = leases.recover_expired(
        ImportJob, statuses=ImportJob.ACTIVE, enqueue=_enqueue, outcome=_recovered, fields=["attempts"]
    )
    folder = import_spool_folder()
    if folder.is_dir():
        active = {str(pk) for pk in ImportJob.objects.filter(status__in=ImportJob.ACTIVE).values_list("pk", flat=True)}
        for path in folder.iterdir():
            if path.name.split(".")[0] not in active:
                path.unlink(missing_ok=True)
    return count


def _recovered(job: ImportJob, now) -> dict:
    if import_spool_path(job) is None:
        return leases.finished(
            ImportJob.Status.FAILED, error="its spooled body is gone; nothing was written. Send the file again."
        )
    if job.status == ImportJob.Status.QUEUED:
        logger.warning("import #%s was not taken by a worker in time; it is sent to the queue again", job.pk)
        return leases.requeued(ImportJob, lease_until=leases.awaited(ImportJob))
    if job.attempts >= MAX_ATTEMPTS:
        error = (
            f"its worker was lost (killed, or cut off from the database) {job.attempts} time(s) before it finished;"
            " nothing was written. Send the file again."
        )
        return leases.finished(ImportJob.Status.FAILED, error=error)
    return leases.requeued(ImportJob, lease_until=leases.awaited(ImportJob))
