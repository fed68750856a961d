"""Celery tasks of evaluation: thin; the evaluation's row is the source of truth."""

from celery import shared_task
from celery.signals import worker_ready

from core import leases

from . import generation, services


@shared_task(name="evaluation.run", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def evaluation_task(evaluation_id: int) -> None:
    services.evaluation_execute(evaluation_id=evaluation_id)


@shared_task(name="evaluation.recover", ignore_result=True)
def evaluations_recover_task() -> int:
    """Periodic (celery beat): requeue the evaluations whose worker died."""
    return services.evaluations_recover()


@worker_ready.connect
def recover_on_start(**kwargs) -> None:
    leases.recover_at_start(services.evaluations_recover, jobs="evaluation(s)")


@shared_task(name="evaluation.generate", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def generation_task(job_id: int) -> None:
    generation.generation_job_execute(job_id=job_id)


@shared_task(name="evaluation.generation_recover", ignore_result=True)
def generation_recover_task() -> int:
    """Periodic (celery beat): requeue the generation jobs whose worker died."""
    return generation.generation_jobs_recover()


@worker_ready.connect
def recover_generation_on_start(**kwargs) -> None:
    leases.recover_at_start(generation.generation_jobs_recover, jobs="generation job(s)")
