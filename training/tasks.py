"""Celery tasks of training: thin; the run's database row is the source of truth."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    name="training.run",
    ignore_result=True,
    acks_late=True,  # a worker that dies mid-run leaves the message for another worker, which resumes
    reject_on_worker_lost=True,
)
def training_run_task(run_id: int) -> None:
    services.training_run_execute(run_id=run_id)


@shared_task(name="training.merge", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def training_run_merge_task(run_id: int) -> None:
    services.training_run_merge_execute(run_id=run_id)


@shared_task(name="training.recover", ignore_result=True)
def training_runs_recover_task() -> int:
    """Periodic (celery beat): requeue the runs whose worker died, so that they resume from a checkpoint."""
    return services.training_runs_recover()


@worker_ready.connect
def recover_on_start(**kwargs) -> None:
    """A worker that starts after a crash picks up what the dead one left, without waiting for the beat."""
    try:
        requeued = services.training_runs_recover()
        if requeued:
            logger.warning("requeued %d training run(s) whose worker was lost", requeued)
    except Exception:  # the database may not be up yet; the periodic task retries
        logger.exception("could not look for lost training runs at start")
