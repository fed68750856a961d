"""Celery tasks of evaluation: thin; the evaluation's row is the source of truth."""

from celery import shared_task

from . import services


@shared_task(name="evaluation.run", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def evaluation_task(evaluation_id: int) -> None:
    services.evaluation_execute(evaluation_id=evaluation_id)
