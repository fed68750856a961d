"""The artifact store (core/store.py) on a local folder and on an S3-compatible server: units complete only once their
marker is written last; a run killed on one node resumes on another from the store's last checkpoint; another node
evaluates it from the store; the web node streams its download from the store."""

import io
import json
import shutil
import signal
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from core import store as stores
from evaluation import services as evaluation_services
from evaluation.models import Evaluation
from training import artifacts, base_models, services
from training.models import TrainingRun

from ..helpers import S3_ENV, in_thread, service_env, start_s3_server, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def s3_endpoint():
    server, endpoint = start_s3_server()
    yield endpoint
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch):
    """The store is a fresh prefix of the S3 server's bucket (credentials in the environment, as a node has them)."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    settings.FINELINE_ARTIFACT_STORE = f"s3://fineline/{uuid.uuid4().hex[:8]}"
    settings.FINELINE_S3_ENDPOINT_URL = s3_endpoint
    return {
        **S3_ENV,
        "FINELINE_ARTIFACT_STORE": settings.FINELINE_ARTIFACT_STORE,
        "FINELINE_S3_ENDPOINT_URL": s3_endpoint,
    }


@pytest.fixture(params=["local", "s3"])
def any_store(request, settings, tmp_path):
    if request.param == "s3":
        request.getfixturevalue("s3")
    else:
        settings.FINELINE_ARTIFACT_STORE = str(tmp_path / "store")
    return stores.store()


def folder_with(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


FILES = {"adapter_model.safetensors": b"w" * 70_000, "adapter_config.json": b"{}", "tokenizer/vocab.json": b"[1]"}


def test_a_unit_counts_only_once_its_marker_is_written_last(any_store, tmp_path, monkeypatch):
    writes = []  # the remote paths written, in order
    put_file, pipe_file = any_store.fs.put_file, any_store.fs.pipe_file
    monkeypatch.setattr(
        any_store.fs, "put_file", lambda local, remote, **k: writes.append(remote) or put_file(local, remote, **k)
    )
    monkeypatch.setattr(
        any_store.fs, "pipe_file", lambda remote, data, **k: writes.append(remote) or pipe_file(remote, data, **k)
    )
    source = folder_with(tmp_path / "adapter", FILES)
    assert any_store.put_folder(source, "runs/run-7/adapter") == sum(map(len, FILES.values()))
    assert writes[-1].endswith("runs/run-7/adapter/COMPLETE") and len(writes) == 4
    assert any_store.files("runs/run-7/adapter") == sorted((name, len(data)) for name, data in FILES.items())

    fetched = any_store.get_folder("runs/run-7/adapter", tmp_path / "node-b" / "adapter")
    for name, data in FILES.items():
        assert (fetched / name).read_bytes() == data
    assert (
        b"".join(any_store.stream("runs/run-7/adapter", "adapter_model.safetensors"))
        == FILES["adapter_model.safetensors"]
    )

    # A node that died mid-upload: files without the marker are no unit at all.
    any_store.fs.makedirs(any_store.path("runs/run-7/checkpoints/step-8"), exist_ok=True)
    any_store.fs.pipe_file(any_store.path("runs/run-7/checkpoints/step-8/trainable.safetensors"), b"half")
    any_store.put_folder(folder_with(tmp_path / "step-4", {"state.pt": b"s"}), "runs/run-7/checkpoints/step-4")
    assert any_store.units("runs/run-7/checkpoints") == ["step-4"]
    assert not any_store.complete("runs/run-7/checkpoints/step-8")
    assert any_store.get_folder("runs/run-7/checkpoints/step-8", tmp_path / "step-8") is None
    assert any_store.files("runs/run-7/checkpoints/step-8") == []

    any_store.delete("runs/run-7/adapter")
    assert not any_store.complete("runs/run-7/adapter") and any_store.files("runs/run-7/adapter") == []
    for key in ("../etc", "runs/../../x", "", "/"):
        with pytest.raises(ValueError):
            any_store.path(key)


def test_checkpoints_are_kept_to_the_newest_and_fetched_only_when_newer(any_store, tmp_path):
    node_a = tmp_path / "a" / "run-5"
    for step in (2, 4, 6):
        folder = folder_with(node_a / "checkpoints" / f"step-{step}", {"trainable.safetensors": b"t" * step})
        (folder / "COMPLETE").write_text(f"{step}\n")
        assert artifacts.checkpoint_publish(5, folder, keep=2) == step
    assert any_store.units("runs/run-5/checkpoints") == ["step-4", "step-6"]

    node_b = tmp_path / "b" / "run-5"  # an empty disk: the newest complete one comes from the store
    assert artifacts.checkpoint_restore(5, node_b) == "step-6"
    assert (node_b / "checkpoints" / "step-6" / "trainable.safetensors").read_bytes() == b"t" * 6
    assert (node_b / "checkpoints" / "step-6" / "COMPLETE").is_file()
    assert artifacts.checkpoint_restore(5, node_b) is None  # already here
    assert artifacts.checkpoint_restore(6, node_b) is None  # a run with no checkpoint stored


def test_a_tiny_local_base_built_on_one_node_is_loaded_from_the_store_on_another(
    s3, settings, tmp_path, project, lead, version
):
    name = "tiny-local-0123456789abcdef"
    settings.VAR_DIR = tmp_path / "node-a"
    built = folder_with(base_models.tiny_local_cache() / name, {"config.json": b"{}", "model.safetensors": b"m" * 99})
    assert artifacts.tiny_local_publish(built) == 101 and artifacts.tiny_local_publish(built) == 0  # once
    run = TrainingRun.objects.create(
        project=project, dataset_version=version, base_model="tiny-local", status="succeeded",
        adapter_dir=str(tmp_path / "node-a" / "runs" / "run-0" / "adapter"),
    )  # fmt: skip
    adapter = folder_with(
        tmp_path / "adapter", {"fineline_config.json": json.dumps({"base_model": str(built)}).encode()}
    )
    artifacts.publish(run.pk, "adapter", adapter)

    settings.VAR_DIR = tmp_path / "node-b"
    base = Path(base_models.trained_base(run))
    assert base == tmp_path / "node-b" / "models" / name and (base / "model.safetensors").read_bytes() == b"m" * 99
    assert (
        artifacts.run_artifact(run, "adapter") == tmp_path / "node-b" / "cache" / "runs" / f"run-{run.pk}" / "adapter"
    )

    # A recorded base that is not a build's name is judged as any base model: a folder in the data folder is refused.
    forged = {"base_model": str(tmp_path / "node-b" / "models" / "tiny-local-x" / ".." / ".." / "runs")}
    artifacts.publish(
        run.pk, "adapter", folder_with(tmp_path / "forged", {"fineline_config.json": json.dumps(forged).encode()})
    )
    shutil.rmtree(tmp_path / "node-b" / "cache")
    with pytest.raises(Exception, match="base model"):
        base_models.trained_base(run)


def untar(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


@pytest.mark.slow
def test_a_run_killed_on_one_node_resumes_on_another_and_a_third_evaluates_it(
    s3, settings, project, lead, version, small_base, tmp_path, client
):
    """Node A trains until a checkpoint is in the store and is SIGKILLed, its disk thrown away; node B (empty disk)
    requeues the run once A's lease expires, fetches the checkpoint and finishes; node C (empty disk) evaluates the
    run, loading the adapter from the store; the web node (empty disk) streams the download from the store."""
    nodes = {name: tmp_path / name for name in ("a", "b", "c", "web")}
    env = {name: service_env(FINELINE_VAR_DIR=folder, FINELINE_RUN_LEASE_SECONDS=3, FINELINE_RECOVERY_INTERVAL=1, **s3)
           for name, folder in nodes.items()}  # fmt: skip
    run = services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base,
        options={"max_steps": 40, "batch_size": 4, "checkpoint_every": 5, "eval_every": 1000},
        override_readiness="store test",
    )  # fmt: skip
    node_a = start_worker(env["a"], queues="gpu")
    node_b = node_c = None
    try:
        deadline = time.monotonic() + 240
        while "stored (" not in TrainingRun.objects.get(pk=run.pk).log and time.monotonic() < deadline:
            assert node_a.poll() is None, node_a.communicate()[0].decode()
            time.sleep(0.05)
        output_a = stop_worker(node_a, signal.SIGKILL)
        killed = time.monotonic()
        shutil.rmtree(nodes["a"])  # the node's disk is gone with it
        stored = stores.store().units(artifacts.checkpoints_key(run.pk))
        assert stored, (TrainingRun.objects.get(pk=run.pk).log, output_a)
        newest = max(int(name[5:]) for name in stored)

        node_b = start_worker(env["b"], queues="gpu,default", extra=["--beat", "--schedule", str(tmp_path / "beat")])
        deadline = time.monotonic() + 300
        picked_up = None
        while TrainingRun.objects.get(pk=run.pk).status in TrainingRun.ACTIVE and time.monotonic() < deadline:
            if picked_up is None and "fetched from the artifact store" in TrainingRun.objects.get(pk=run.pk).log:
                picked_up = time.monotonic() - killed  # the lease (3 s) ran out, B claimed it and has the checkpoint
            time.sleep(0.2)
        output_b = stop_worker(node_b)
        node_b = None
        run.refresh_from_db()
        assert run.status == "succeeded", (run.error, run.log, output_b)
        assert f"checkpoint step-{newest} fetched from the artifact store" in run.log, run.log
        assert f"resumed from step-{newest}" in run.log and run.step == 40
        assert [entry["step"] for entry in run.metrics] == list(range(1, 41))
        assert stores.store().complete(artifacts.run_key(run.pk, "adapter"))
        shutil.rmtree(nodes["b"])
        print(f"second node picked the run up {picked_up:.1f} s after the first died")

        evaluation = evaluation_services.evaluation_create(
            project=project, user=lead, training_run=run, systems=["fine_tuned"]
        )
        node_c = start_worker(env["c"], queues="gpu")
        deadline = time.monotonic() + 300
        while Evaluation.objects.get(pk=evaluation.pk).status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        output_c = stop_worker(node_c)
        node_c = None
        evaluation.refresh_from_db()
        assert evaluation.status == "succeeded", (evaluation.error, output_c)
        assert (nodes["c"] / "cache" / "runs" / f"run-{run.pk}" / "adapter" / "adapter_model.safetensors").is_file()
    finally:
        for worker in (node_a, node_b, node_c):
            if worker is not None and worker.poll() is None:
                stop_worker(worker, signal.SIGKILL)

    settings.VAR_DIR = nodes["web"]
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/runs/{run.pk}/")
    assert f"s3://fineline/{s3['FINELINE_ARTIFACT_STORE'][len('s3://fineline/') :]}/runs/run-{run.pk}/adapter" in (
        page.content.decode()
    )
    download = client.get(f"/projects/{project.slug}/runs/{run.pk}/artifacts/adapter/")
    assert download.status_code == 200 and download.streaming
    files = untar(b"".join(download.streaming_content))
    stored = stores.store()
    key = artifacts.run_key(run.pk, "adapter")
    top = f"{project.slug}-run{run.pk}-adapter"
    assert files == {f"{top}/{name}": b"".join(stored.stream(key, name)) for name, _ in stored.files(key)}
    assert f"{top}/adapter_model.safetensors" in files and not nodes["web"].joinpath("cache").exists()


def test_a_worker_cut_off_past_its_lease_stops_and_overwrites_nothing(
    project, lead, version, small_base, tmp_path, settings
):
    """Node A trains; its lease runs out while it is cut off, and node B takes the run over (recovery, then B's
    claim). A's next write finds the run held by B: A stops there, and neither the row nor the store gets anything
    more from it (no progress, no checkpoint, no adapter, no final status)."""
    from django.utils import timezone

    from core import leases

    settings.VAR_DIR = tmp_path
    run = services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base,
        options={"max_steps": 400, "batch_size": 4, "checkpoint_every": 2}, override_readiness="takeover",
    )  # fmt: skip
    thread, outcome = in_thread(lambda: services.training_run_execute(run_id=run.pk, worker="node-a:1"))
    deadline = time.monotonic() + 120
    while TrainingRun.objects.get(pk=run.pk).step < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    TrainingRun.objects.filter(pk=run.pk).update(
        lease_owner="node-b:1", lease_until=timezone.now() + leases.lease_length(TrainingRun)
    )
    taken = TrainingRun.objects.get(pk=run.pk)
    stored = stores.store().units(artifacts.checkpoints_key(run.pk))
    thread.join(timeout=120)
    assert not thread.is_alive() and outcome["result"] is None
    after = TrainingRun.objects.get(pk=run.pk)
    assert (after.status, after.lease_owner, after.step, after.log) == ("running", "node-b:1", taken.step, taken.log)
    assert after.step < 400 and after.finished_at is None and after.error == ""
    assert stores.store().units(artifacts.checkpoints_key(run.pk)) == stored
    assert not stores.store().complete(artifacts.run_key(run.pk, "adapter"))


def test_an_evaluation_taken_over_stops_at_its_next_write(project, lead, version):
    from core import leases

    run = TrainingRun.objects.create(
        project=project, dataset_version=version, base_model="tiny-local", status="succeeded"
    )
    evaluation = evaluation_services.evaluation_create(project=project, user=lead, training_run=run, enqueue=False)
    assert leases.claim(Evaluation, evaluation.pk, "node-a:1")
    progress = evaluation_services._Progress(evaluation, "node-a:1")
    progress.stage("answering")
    Evaluation.objects.filter(pk=evaluation.pk).update(lease_owner="node-b:1")
    with pytest.raises(leases.LeaseLost):
        progress.stage("scoring")
    assert Evaluation.objects.get(pk=evaluation.pk).stage == "answering"
