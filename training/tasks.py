"""Celery tasks of training: thin; the run's database row is the source of truth."""

from celery import shared_task
from celery.signals import worker_ready

from core import leases

from . import services


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
    leases.recover_at_start(services.training_runs_recover, jobs="training run(s)")


@shared_task(name="training.chat", ignore_result=True, acks_late=False)
def chat_reply_task(reply_id: int) -> None:
    """A chat is short and a person waits for it: a worker lost mid-answer fails it rather than answering it again."""
    services.chat_reply_execute(reply_id=reply_id)
