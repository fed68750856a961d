"""Celery tasks of training: thin; the run's database row is the source of truth."""

from celery import shared_task

from . import services


@shared_task(
    name="training.run",
    ignore_result=True,
    acks_late=True,  # a worker that dies mid-run leaves the message for another worker, which resumes
    reject_on_worker_lost=True,
)
def training_run_task(run_id: int) -> None:
    services.training_run_execute(run_id=run_id)
