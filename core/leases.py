"""Leased jobs: a job row (core.models.LeasedJob) that one worker at a time runs, holding it through a lease.

A worker claims the job before running it (`claim`): a queued one, or one whose lease expired (its worker died), so
that a job never runs twice at once. A heartbeat thread renews the lease three times per lease length while the worker
lives, even through a long model load or checkpoint write (`Heartbeat`). The periodic recovery (celery beat, and every
worker at start) finds the jobs whose lease expired (`recover_expired`); what becomes of them is the app's to say: a
training run resumes from its last checkpoint, an evaluation starts over.

A worker cut off from the database outlives its lease without knowing it; when it comes back, another worker may hold
the job. Every write of a running job goes through `write` (or filters on `held`), so the old holder's first write
finds the job gone (LeaseLost) and it stops, instead of overwriting the new holder's progress and artifacts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import LeasedJob

LOG_KEPT = 20_000  # characters of a job's log its row keeps: the end of it

logger = logging.getLogger(__name__)


def log_kept(text: str) -> str:
    """What a job's row keeps of its log: the end."""
    return text[-LOG_KEPT:]


def worker_name() -> str:
    """This process, as a lease names its owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_length(model: type[LeasedJob]) -> timedelta:
    """How long a worker holds a job of `model` without renewing (the setting its LEASE_SETTING names)."""
    return timedelta(seconds=getattr(settings, model.LEASE_SETTING))


def claim(model: type[LeasedJob], pk: int, worker: str) -> bool:
    """Take the job's lease and mark it running; False when another worker's lease on it is still alive (or the job
    is no longer queued or running). A queued job is taken whatever its `lease_until` (there, the time by which a
    worker should have taken it: see `awaited`); an expired lease (a dead worker) is taken over, and a worker's own
    renewed."""
    now = timezone.now()
    status = model.Status
    return bool(
        model.objects.filter(pk=pk, status__in=[status.QUEUED, status.RUNNING])
        .filter(Q(status=status.QUEUED) | Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=worker))
        .update(status=status.RUNNING, lease_owner=worker, lease_until=now + lease_length(model), started_at=now)
    )


class LeaseLost(Exception):
    """This worker no longer holds the job: its lease ran out (a network partition, a long pause) and another worker
    took it over. The worker stops and writes nothing more to the job's row or its artifacts."""


def held(model: type[LeasedJob], pk: int, worker: str):
    """The job's row while `worker` holds it (an empty queryset once another worker took it over)."""
    return model.objects.filter(pk=pk, lease_owner=worker)


def ensure_held(model: type[LeasedJob], pk: int, worker: str) -> None:
    """LeaseLost when `worker` no longer holds the job (before work whose result only the holder may keep)."""
    if not held(model, pk, worker).exists():
        raise LeaseLost(f"{model._meta.verbose_name} #{pk} is no longer held by {worker}")


def write(model: type[LeasedJob], pk: int, worker: str, **changes: Any) -> None:
    """Update the job's row as its holder; LeaseLost when `worker` no longer holds it (nothing is written)."""
    if not held(model, pk, worker).update(**changes):
        raise LeaseLost(f"{model._meta.verbose_name} #{pk} is no longer held by {worker}")


def finished(status: str, **changes: Any) -> dict[str, Any]:
    """The changes that end a job in `status`: when it finished, its lease given back."""
    return {"status": status, "finished_at": timezone.now(), "lease_until": None, **changes}


class Heartbeat(threading.Thread):
    """Renews `worker`'s lease on the job while the job is active, every `interval` seconds (a third of the lease by
    default), from a database connection of its own, with the row's `changes()` (none here); `stopped.set()` ends
    it. A renewal that finds the job no longer this worker's sets `lost` and stops."""

    interval: float | None = None

    def __init__(self, model: type[LeasedJob], pk: int, worker: str):
        super().__init__(name=f"lease-{model._meta.model_name}-{pk}", daemon=True)
        self.model, self.job_id, self.worker, self.stopped = model, pk, worker, threading.Event()
        self.lost = False

    def changes(self) -> dict[str, Any]:
        return {}

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.wait(self.interval or lease_length(self.model).total_seconds() / 3):
                mine = self.model.objects.filter(pk=self.job_id, lease_owner=self.worker, status__in=self.model.ACTIVE)
                if not mine.update(lease_until=timezone.now() + lease_length(self.model), **self.changes()):
                    self.lost = not self.stopped.is_set()
                    return
        finally:
            connection.close()


def awaited(model: type[LeasedJob]) -> datetime:
    """The `lease_until` of a job just queued: by then a worker should have claimed it. A queued job still unclaimed
    after it had its broker message lost (a broker restarted without persistence, a purge), and the recovery may send
    it again; a second message for a job already claimed or ended finds nothing to claim, so sending twice is safe."""
    return timezone.now() + lease_length(model)


def requeued(model: type[LeasedJob], **changes: Any) -> dict[str, Any]:
    """The changes that put a job back in the queue for any worker."""
    return {"status": model.Status.QUEUED, "lease_owner": "", "lease_until": None, **changes}


def recover_expired(
    model: type[LeasedJob],
    *,
    statuses: Iterable[str],
    enqueue: Callable[[int], None],
    outcome: Callable[[Any, datetime], dict[str, Any]] | None = None,
    fields: Iterable[str] = (),
) -> int:
    """Decide what becomes of each job in one of `statuses` whose lease expired (its worker died).

    `outcome(job, now)` gives the row's changes (by default `requeued`); the job is loaded with its pk, status and
    `fields`. A job put back in the queue is handed to `enqueue(pk)`. A claim or another recovery between the read
    and the write wins: the job is left as it became. Returns how many jobs were requeued.
    """
    now = timezone.now()
    count = 0
    for job in model.objects.filter(status__in=list(statuses), lease_until__lt=now).only("pk", "status", *fields):
        changes = outcome(job, now) if outcome is not None else requeued(model)
        written = model.objects.filter(pk=job.pk, status=job.status, lease_until__lt=now).update(**changes)
        if written and changes["status"] == model.Status.QUEUED:
            enqueue(job.pk)
            count += 1
    return count


def recover_at_start(recover: Callable[[], int], *, jobs: str) -> None:
    """A worker that starts after a crash picks up what a dead one left, without waiting for the beat."""
    try:
        count = recover()
        if count:
            logger.warning("requeued %d %s whose worker was lost", count, jobs)
    except Exception:  # the database may not be up yet; the periodic task retries
        logger.exception("could not look for lost %s at start", jobs)
