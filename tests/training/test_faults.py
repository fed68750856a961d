"""Faults of the services around a run: Redis restarted while one run trains and two wait in the queue. With
Redis's append-only file on (as docker-compose runs it), nothing queued is lost and the worker consumes again."""

import socket
import subprocess
import sys
import time

import pytest

from training.models import TrainingRun

from ..helpers import ROOT, service_env, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis(port: int, folder) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--appendonly", "yes",
         "--save", ""],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout == "PONG\n":
            return server
        time.sleep(0.1)
    raise RuntimeError("redis did not start")


def test_a_redis_restart_loses_no_queued_run(project, version, small_base, tmp_path):
    port = free_port()
    broker = redis(port, tmp_path)
    env = service_env(REDIS_URL=f"redis://127.0.0.1:{port}/0", FINELINE_VAR_DIR=tmp_path / "var")
    worker = start_worker(env, queues="gpu", loglevel="INFO")
    try:
        for steps in (120, 20, 20):  # the first one trains while the two others wait in Redis
            subprocess.run(
                [sys.executable, "manage.py", "train", project.slug, "--dataset-version", str(version.number),
                 "--base-model", small_base, "--max-steps", str(steps), "--override-readiness", "fault test"],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
        runs = list(TrainingRun.objects.order_by("id"))
        deadline = time.monotonic() + 120
        while TrainingRun.objects.get(pk=runs[0].pk).step < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        queued = TrainingRun.objects.filter(status="queued").count()
        assert TrainingRun.objects.get(pk=runs[0].pk).status == "running" and queued == 2
        subprocess.run(["redis-cli", "-p", str(port), "shutdown"], capture_output=True)
        broker.wait(timeout=30)
        time.sleep(2)
        broker = redis(port, tmp_path)  # the same append-only file
        restarted = time.monotonic()
        deadline = restarted + 240
        while TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        finished = time.monotonic() - restarted
    finally:
        output = stop_worker(worker)
        broker.terminate()
        broker.wait(timeout=30)
    runs = list(TrainingRun.objects.order_by("id"))
    gap = (runs[1].started_at - runs[0].finished_at).total_seconds()
    print(
        f"\nafter a Redis restart: {[run.status for run in runs]} within {finished:.0f} s; the first queued run "
        f"started {gap:.1f} s after the running one finished"
    )
    assert [run.status for run in runs] == ["succeeded"] * 3, output[-3000:]
    assert gap < 60  # the worker consumes again: the bound, far above the usual second
