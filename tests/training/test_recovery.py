"""A run survives its worker: SIGKILL mid-run, a new worker resumes from the last complete checkpoint; a run that
keeps losing its worker fails after a bounded number of starts instead of looping."""

import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from training import services
from training.models import TrainingRun
from training.recipes import sft

from ..helpers import heartbeat_beating, service_env, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _launch(project, lead, version, **options):
    return services.training_run_create(
        project=project, user=lead, dataset_version=version, options=options, override_readiness="recovery test"
    )


def test_a_lost_run_is_requeued_then_failed_after_the_last_attempt(project, lead, version):
    run = _launch(project, lead, version)
    expired = timezone.now() - timedelta(seconds=1)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", lease_owner="dead:1", lease_until=expired, attempts=1
    )
    assert services.training_runs_recover() == 1
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.lease_until) == ("queued", "", None) and "requeued" in run.log

    attempts = settings.FINELINE_RUN_MAX_ATTEMPTS
    TrainingRun.objects.filter(pk=run.pk).update(status="running", lease_until=expired, attempts=attempts)
    assert services.training_runs_recover() == 0
    run.refresh_from_db()
    assert run.status == "failed" and f"lost {attempts} times" in run.error

    cancelling = _launch(project, lead, version)
    TrainingRun.objects.filter(pk=cancelling.pk).update(status="cancelling", lease_until=expired, attempts=1)
    services.training_runs_recover()
    assert TrainingRun.objects.get(pk=cancelling.pk).status == "cancelled"

    alive = _launch(project, lead, version)
    TrainingRun.objects.filter(pk=alive.pk).update(status="running", lease_until=timezone.now() + timedelta(minutes=1))
    services.training_runs_recover()
    assert TrainingRun.objects.get(pk=alive.pk).status == "running"


def test_sigkill_of_the_worker_mid_run_resumes_from_the_last_checkpoint(project, lead, version, small_base, tmp_path):
    """Worker A trains until a checkpoint exists and is SIGKILLed; worker B (with the periodic recovery of celery
    beat) requeues the run once A's lease expires and resumes it: the global step continues, the run finishes."""
    env = service_env(FINELINE_VAR_DIR=tmp_path, FINELINE_RUN_LEASE_SECONDS=3, FINELINE_RECOVERY_INTERVAL=1)
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 400, "batch_size": 8, "checkpoint_every": 10, "eval_every": 100},
        override_readiness="kill test",
    )
    first = start_worker(env, queues="gpu")
    second = None
    try:
        deadline = time.monotonic() + 180
        while TrainingRun.objects.get(pk=run.pk).step < 25 and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()[0].decode()
            time.sleep(0.05)
        first_output = stop_worker(first, signal.SIGKILL)
        killed_at = TrainingRun.objects.get(pk=run.pk).step
        checkpoint = sft.latest_checkpoint(tmp_path / "runs" / f"run-{run.pk}")
        assert checkpoint is not None and 20 <= int(checkpoint.name[5:]) <= killed_at < 400, first_output
        assert TrainingRun.objects.get(pk=run.pk).status == "running"  # the row still says so: nobody cleaned up

        second = start_worker(env, queues="gpu,default", extra=["--beat", "--schedule", str(tmp_path / "beat")])
        deadline = time.monotonic() + 240
        while TrainingRun.objects.get(pk=run.pk).status in TrainingRun.ACTIVE and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        output = stop_worker(second) if second else ""
    run.refresh_from_db()
    assert run.status == "succeeded", (run.error, run.log, output)
    assert run.attempts == 2 and run.step == 400
    assert f"start at step {checkpoint.name[5:]} on cpu (float32), resumed from {checkpoint.name}" in run.log
    assert "requeued to resume" in run.log
    steps = [entry["step"] for entry in run.metrics]
    assert steps == list(range(1, 401))  # the steps redone after the checkpoint appear once
    assert (Path(run.adapter_dir) / "adapter_model.safetensors").exists()
    assert "Traceback" not in output, output


@override_settings(FINELINE_RUN_LEASE_SECONDS=1)
def test_the_heartbeat_keeps_a_live_run_leased(project, lead, version):
    run = _launch(project, lead, version)
    with heartbeat_beating(TrainingRun, run.pk, "me:1"):
        assert services.training_runs_recover() == 0
        assert TrainingRun.objects.get(pk=run.pk).lease_until > timezone.now()
