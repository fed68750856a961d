"""The Celery application. Queues: `default` (CPU work), `gpu` (training and evaluation jobs) and `chat` (a lead's
message to a run's model: served by a worker of its own on a GPU node, so that it never waits behind a training)."""

import os
import signal

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("fineline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"), Queue("chat"))
app.autodiscover_tasks()

# The setting that gives each task its soft time limit (config/settings/components/celery.py), for the message a job
# ends with.
LIMIT_SETTINGS = {
    "training.run": "FINELINE_TRAINING_SOFT_TIME_LIMIT",
    "training.merge": "FINELINE_TRAINING_SOFT_TIME_LIMIT",
    "evaluation.run": "FINELINE_EVALUATION_SOFT_TIME_LIMIT",
}


class TimeLimitReached(SoftTimeLimitExceeded):
    """A task past its soft time limit, said in words: the jobs' services store `f"{type}: {error}"` as the error of
    the job they fail, and billiard's own exception reads "SoftTimeLimitExceeded()"."""

    def __str__(self) -> str:
        return self.args[0] if self.args else super().__str__()


@signals.task_prerun.connect
def time_limit_in_words(task=None, **kwargs) -> None:
    """Have the soft time limit raise TimeLimitReached, which names the limit and its setting.

    billiard's prefork child raises a bare SoftTimeLimitExceeded from its SIGUSR1 handler; that handler is swapped
    for one with this task's message, and only that one: the solo pool's process uses SIGUSR1 for Celery's traceback
    dump, and enforces no time limit anyway.
    """
    from billiard.pool import soft_timeout_sighandler

    current = signal.getsignal(signal.SIGUSR1)
    if current is not soft_timeout_sighandler and not getattr(current, "time_limit_in_words", False):
        return
    timelimit = getattr(task.request, "timelimit", None) or (None, None)
    limit = timelimit[1] or task.soft_time_limit or task.app.conf.task_soft_time_limit
    setting = LIMIT_SETTINGS.get(task.name, "FINELINE_TASK_SOFT_TIME_LIMIT")
    message = f"stopped at its time limit: it ran longer than {limit:g} s ({setting} gives it longer)."

    def soft_limit(signum, frame):
        raise TimeLimitReached(message)

    soft_limit.time_limit_in_words = True
    signal.signal(signal.SIGUSR1, soft_limit)
