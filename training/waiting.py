"""Waiting for a job row from a shell (`train --wait`, `evaluate --wait`): progress as it changes, and a clear word
when nothing picks the job up, instead of silence."""

import time
from collections.abc import Callable

from django.db.models import Model

WORKER_HINT = (
    "Start one in another terminal: .venv/bin/celery -A config worker --queues default,gpu --pool solo"
    " (make run starts one), or run this command again with --inline to do the work in this process."
)


def wait_arguments_add(parser, *, verb: str) -> None:
    """The options every job-launching command shares: --user, --wait, --inline and --notice-after."""
    parser.add_argument("--user", help="The lead who launches it (default: the project's first lead).")
    parser.add_argument("--wait", action="store_true", help="Wait for a worker to finish it, showing progress.")
    parser.add_argument(
        "--inline", action="store_true", help=f"{verb} in this process (no worker is involved), then print it."
    )
    parser.add_argument(
        "--notice-after",
        type=float,
        default=10.0,
        help="With --wait: seconds queued before saying that no worker took it.",
    )


def job_wait(
    *,
    model: type[Model],
    pk: int,
    queue: str,
    describe: Callable[[Model], str],
    write: Callable[[str], None],
    notice_after: float = 10.0,
    poll: float = 2.0,
) -> Model:
    """Poll the job's row until it leaves the active states, writing each new progress line. When it is still queued
    `notice_after` seconds later, say that no worker consumes its queue and how to start one (once)."""
    started = time.monotonic()
    shown = None
    warned = False
    while True:
        job = model.objects.get(pk=pk)
        line = describe(job)
        if line != shown:
            write(line)
            shown = line
        if job.status not in model.ACTIVE:
            return job
        if not warned and job.status == model.Status.QUEUED and time.monotonic() - started >= notice_after:
            write(
                f"Still queued after {notice_after:.0f} s: no worker consumes the `{queue}` queue"
                f" (or every worker is busy with another job). {WORKER_HINT}"
            )
            warned = True
        time.sleep(poll)
