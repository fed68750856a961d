"""`train` and `evaluate` from a shell: `--wait` says when no worker consumes the queue instead of waiting in silence,
and `--inline` does the work in the calling process only, even with a worker running."""

import json
import selectors
import subprocess
import sys
import time

import pytest
import redis

from evaluation.models import Evaluation
from training.models import TrainingRun

from ..helpers import ROOT, service_env, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SPARE_REDIS = "redis://127.0.0.1:6379/9"  # no worker listens here: what a laptop without one looks like
OWN_REDIS = "redis://127.0.0.1:6379/8"


def _stderr_until(process: subprocess.Popen, text: str, timeout: float) -> str:
    """Read the process's standard error until `text` shows up (or the time runs out), then stop the process."""
    seen = ""
    watch = selectors.DefaultSelector()
    watch.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while text not in seen and time.monotonic() < deadline and process.poll() is None:
            if watch.select(timeout=0.5):
                seen += process.stderr.readline()
    finally:
        process.kill()
        process.wait(timeout=30)
    return seen


def test_wait_without_a_worker_says_so_and_how_to_start_one(project, version, small_base, tmp_path):
    env = service_env(REDIS_URL=SPARE_REDIS, FINELINE_VAR_DIR=tmp_path)
    command = [sys.executable, "manage.py", "train", project.slug, "--dataset-version", str(version.number)]
    command += ["--base-model", small_base, "--override-readiness", "test", "--wait", "--notice-after", "2"]
    try:
        waiting = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        said = _stderr_until(waiting, "--inline", timeout=60)
    finally:
        redis.Redis.from_url(SPARE_REDIS).flushdb()
    assert "no worker consumes the `gpu` queue" in said, said
    assert "celery -A config worker" in said and "--inline" in said
    assert TrainingRun.objects.get().status == "queued"


def test_inline_trains_and_evaluates_in_this_process_while_a_worker_runs(project, version, small_base, tmp_path):
    # A broker of its own, empty: any training or evaluation task the worker receives could only come from here.
    redis.Redis.from_url(OWN_REDIS).flushdb()
    env = service_env(REDIS_URL=OWN_REDIS, FINELINE_VAR_DIR=tmp_path)
    worker = start_worker(env, queues="default,gpu", loglevel="INFO")
    try:
        trained = subprocess.run(
            [sys.executable, "manage.py", "train", project.slug, "--dataset-version", str(version.number),
             "--base-model", small_base, "--max-steps", "3", "--override-readiness", "test", "--inline"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert json.loads(trained.stdout)["status"] == "succeeded"
        run = TrainingRun.objects.get()
        evaluated = subprocess.run(
            [sys.executable, "manage.py", "evaluate", str(run.pk), "--systems", "fine_tuned", "--inline"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        assert json.loads(evaluated.stdout)["status"] == "succeeded"
    finally:
        output = stop_worker(worker)
        redis.Redis.from_url(OWN_REDIS).flushdb()
    # The worker never saw either job: inline means this process only.
    assert "training.run[" not in output and "evaluation.run[" not in output, output
    assert Evaluation.objects.get().status == "succeeded"
