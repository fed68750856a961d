"""Training runs through the services and the API, training for real on a tiny model (a few steps)."""

import time
from pathlib import Path

import pytest
from django.test import override_settings

from core import leases, server_paths
from core.errors import ServiceError
from curation import demo
from curation import services as curation_services
from curation.models import Example, QualityScan
from training import services
from training.models import TrainingRun
from training.recipes import sft

from ..helpers import in_thread

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_a_run_on_data_that_is_not_ready_needs_a_written_reason(project, lead, version):
    with pytest.raises(ServiceError, match="not ready"):
        services.training_run_create(project=project, user=lead, dataset_version=version)
    run = services.training_run_create(
        project=project, user=lead, dataset_version=version, override_readiness="A first look at the loss."
    )
    assert (run.status, run.readiness_override) == ("queued", "A first look at the loss.")
    with pytest.raises(ServiceError, match="unknown training option"):
        services.training_run_create(
            project=project, user=lead, dataset_version=version, options={"lr": 1}, override_readiness="x"
        )


def test_only_leads_launch_runs(project, version, lead_api, expert_api):
    url = f"/api/v1/projects/{project.slug}/training-runs/"
    body = {"dataset_version": version.number, "override_readiness": "demo"}
    assert expert_api.post(url, body, format="json").status_code == 403
    response = lead_api.post(url, body, format="json")
    assert response.status_code == 201 and response.json()["status"] == "queued"
    assert expert_api.get(f"{url}{response.json()['id']}/").json()["base_model"] == "tiny-local"
    assert expert_api.post(f"{url}{response.json()['id']}/cancel/").status_code == 403


def test_a_run_trains_records_its_progress_and_saves_the_adapter(
    project, lead, version, small_base, tmp_path, settings
):
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 6, "batch_size": 8, "eval_every": 3, "checkpoint_every": 3},
        override_readiness="test",
    )
    settings.VAR_DIR = tmp_path  # the server's data folder, for the run and its merge alike
    done = services.training_run_execute(run_id=run.pk)
    assert (done.status, done.step, done.total_steps, done.attempts) == ("succeeded", 6, 6, 1)
    assert [entry["step"] for entry in done.metrics] == [1, 2, 3, 4, 5, 6]
    assert "val_loss" in done.metrics[2] and done.trainable_params == 65536 and done.device == "cpu"
    assert (Path(done.adapter_dir) / "adapter_model.safetensors").exists()
    assert "step 6/6" in done.log
    command = done.deployment["vllm_command"]
    assert command.startswith("vllm serve ") and "--enable-lora --lora-modules" in command
    assert "--max-lora-rank 16" in command and "--api-key $VLLM_API_KEY" in command
    modelfile = done.deployment["ollama_modelfile"]
    assert modelfile.startswith("FROM ") and f"ADAPTER {done.adapter_dir}" in modelfile
    assert (Path(done.output_dir) / "deploy" / "serve-vllm.sh").exists()

    # The project's token lengths were estimates; the base model's tokenizer now counts them.
    project.refresh_from_db()
    assert project.tokenizer == small_base
    scan = QualityScan.objects.filter(project=project, status="queued").get()
    scan = curation_services.quality_scan_run(scan=scan)
    # the folder named as pages show it: relative to the models folder
    assert scan.stats["estimate"] == f"tokens counted with the tokenizer of {server_paths.redact(small_base)}"
    assert scan.stats["estimate"].startswith("tokens counted with the tokenizer of $FINELINE_MODELS_DIR/tiny-local-")
    tokenizer = sft.load_tokenizer(small_base)
    answers = [m[-1]["content"] for m in Example.objects.filter(project=project).values_list("messages", flat=True)]
    lengths = [len(tokenizer(answer, add_special_tokens=False)["input_ids"]) for answer in answers]
    buckets = scan.stats["buckets"]
    expected = [
        sum(1 for n in lengths if low <= n < high) for low, high in zip(buckets, [*buckets[1:], 10**9], strict=True)
    ]
    assert scan.stats["histogram"]["assistant"] == expected

    queued = services.training_run_merge_request(run=done)
    assert queued.merge_status == "queued"
    merged = services.training_run_merge_execute(run_id=run.pk)
    assert merged.merge_status == "done" and (Path(merged.merged_dir) / "model.safetensors").exists()
    assert merged.deployment["vllm_command_merged"].startswith(f"vllm serve {merged.merged_dir} --max-model-len")
    assert "--enable-lora" not in merged.deployment["vllm_command_merged"]
    assert merged.deployment["ollama_modelfile_merged"].startswith(f"FROM {merged.merged_dir}\n")
    assert merged.deployment["vllm_command"] == command  # the adapter's bundle stays
    assert services.training_run_merge_execute(run_id=run.pk) is None  # not asked again: nothing to do


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_queued_or_a_running_run(project, lead, version, small_base, tmp_path):
    queued = services.training_run_create(project=project, user=lead, dataset_version=version, override_readiness="x")
    assert services.training_run_cancel(run=queued).status == "cancelled"
    running = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 400, "batch_size": 8},
        override_readiness="x",
    )

    def work():
        with override_settings(VAR_DIR=tmp_path):
            return services.training_run_execute(run_id=running.pk, worker="w1")

    worker, outcome = in_thread(work)
    deadline = time.monotonic() + 120
    while TrainingRun.objects.get(pk=running.pk).step < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert services.training_run_cancel(run=running).status == "cancelling"
    worker.join(timeout=120)
    stopped = outcome["result"]
    assert stopped.status == "cancelled" and 2 <= stopped.step < 400 and stopped.finished_at


def test_a_run_held_by_a_live_worker_is_not_run_twice(project, lead, version):
    run = services.training_run_create(project=project, user=lead, dataset_version=version, override_readiness="x")
    from django.utils import timezone

    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", lease_owner="other:1", lease_until=timezone.now() + leases.lease_length(TrainingRun)
    )
    assert services.training_run_execute(run_id=run.pk, worker="me:2") is None


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_gpu_queue_runs_a_launched_run(project, version, lead_api, small_base, tmp_path):
    """Launch through the API; a Celery worker consuming Redis's `gpu` queue trains; the row tells the story."""

    from ..helpers import service_env, start_worker

    env = service_env(FINELINE_VAR_DIR=tmp_path)
    worker = start_worker(env, queues="gpu")
    try:
        body = {
            "dataset_version": version.number,
            "base_model": small_base,
            "override_readiness": "worker test",
            "options": {"max_steps": 5, "batch_size": 8},
        }
        run_id = lead_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json").json()["id"]
        seen = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = TrainingRun.objects.get(pk=run_id).status
            seen.add(status)
            if status not in TrainingRun.ACTIVE:
                break
            time.sleep(0.3)
        run = TrainingRun.objects.get(pk=run_id)
        assert run.status == "succeeded", run.error
        assert "running" in seen and run.step == 5 and run.lease_until is None
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output, output


def test_a_run_across_two_processes_trains_with_ddp(project, lead, version, small_base, tmp_path):
    """The multi-GPU path (torchrun, one process per GPU), exercised on two CPU processes with gloo."""
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 6, "batch_size": 8, "eval_every": 3, "checkpoint_every": 3},
        override_readiness="test",
    )
    with override_settings(VAR_DIR=tmp_path, FINELINE_TRAIN_PROCESSES="2"):
        done = services.training_run_execute(run_id=run.pk)
    assert done.status == "succeeded", done.error
    assert "start at step 0 on 2 processes on cpu" in done.log
    assert [entry["step"] for entry in done.metrics] == [1, 2, 3, 4, 5, 6] and "val_loss" in done.metrics[2]
    assert (Path(done.adapter_dir) / "adapter_model.safetensors").exists()
    assert sft.latest_checkpoint(Path(done.output_dir)).name == "step-3"


def test_cancel_reaches_every_process_of_a_distributed_run(small_base, tmp_path):
    rows = [{"messages": row["messages"]} for row in demo.generate(count=60)]
    seen = []
    result = sft.run_distributed(
        sft.SFTConfig(base_model=small_base, max_steps=500, batch_size=4),
        rows,
        [],
        tmp_path / "run",
        processes=2,
        on_log=seen.append,
        should_stop=lambda: sum(1 for entry in seen if entry["event"] == "step") >= 3,
        poll_seconds=0.1,
    )
    assert result.cancelled and 3 <= result.steps < 500 and result.adapter_dir is None
