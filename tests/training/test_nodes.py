"""GPU nodes on other hosts (network namespaces, tests/hosts.py): a control host (web, PostgreSQL, Redis, the S3
store) and two GPU hosts with empty disks, talking only over the network. A run launched through the API loses its
node's network mid-run; the other node resumes it from the last complete checkpoint in the store; the evaluation runs
on a node that never saw the run and loads the adapter from the store; the run's adapter downloads through the API."""

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from ..hosts import Hosts

pytestmark = [pytest.mark.slow]

PROJECT = "/api/v1/projects/support-triage"


def untar(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


def test_a_node_cut_off_the_network_mid_run_hands_it_to_the_other_through_the_store(small_base, tmp_path):
    models_dir = str(Path(small_base).parent)  # FINELINE_MODELS_DIR: a base model every node has
    with Hosts(tmp_path, models_dir) as hosts:
        hosts.start_control()
        token = hosts.manage("create_api_token", "lena").strip()
        for host in ("a", "b"):
            hosts.worker(host, "gpu")

        def call(method, path, body=None, expect=200):
            status, data = hosts.api(method, f"{PROJECT}{path}", token, body)
            assert status == expect, (method, path, status, data[:2000])
            return json.loads(data) if data and data[:1] in (b"{", b"[") else data

        version = call("POST", "/dataset-versions/", {}, expect=201)
        run = call("POST", "/training-runs/", {
            "dataset_version": version["number"], "base_model": small_base, "override_readiness": "nodes test",
            "options": {"max_steps": 40, "batch_size": 4, "checkpoint_every": 5, "eval_every": 1000},
        }, expect=201)  # fmt: skip
        detail = f"/training-runs/{run['id']}/"

        def stored_on():
            """The host training the run, once it has put a checkpoint in the store."""
            if "stored (" not in call("GET", detail)["log"]:
                return None
            return next((h for h in ("a", "b") if (hosts.var_dir(h) / "runs" / f"run-{run['id']}").exists()), None)

        first = hosts.wait(stored_on, 300, "a node stores a checkpoint", poll=0.2)
        other = "b" if first == "a" else "a"
        hosts.link_down(first)
        cut = time.monotonic()

        def picked_up():
            return "fetched from the artifact store" in call("GET", detail)["log"]

        hosts.wait(picked_up, 180, f"node {other} picks the run up", poll=0.2)
        pickup = time.monotonic() - cut
        done = hosts.wait(lambda: (lambda r: r if r["status"] not in ("queued", "running") else None)(
            call("GET", detail)), 300, "the run finishes")  # fmt: skip
        assert done["status"] == "succeeded", (done["error"], done["log"])
        assert done["step"] == 40 and "resumed from step-" in done["log"], done["log"]
        assert (hosts.var_dir(other) / "runs" / f"run-{run['id']}" / "adapter").is_dir()
        print(f"node {other} took the run over {pickup:.1f} s after node {first} lost its network")

        # The node that was cut off comes back with an empty disk; the one that trained the run leaves.
        hosts.stop(first)
        hosts.wipe(first)
        hosts.link_up(first)
        hosts.stop(other)
        hosts.worker(first, "gpu")
        evaluation = call("POST", "/evaluations/", {"training_run": run["id"], "systems": ["fine_tuned"]}, expect=201)
        finished = hosts.wait(lambda: (lambda e: e if e["status"] not in ("queued", "running") else None)(
            call("GET", f"/evaluations/{evaluation['id']}/")), 300, "the evaluation finishes")  # fmt: skip
        assert finished["status"] == "succeeded", finished
        cached = hosts.var_dir(first) / "cache" / "runs" / f"run-{run['id']}" / "adapter" / "adapter_model.safetensors"
        assert cached.is_file()

        files = untar(call("GET", f"{detail}artifacts/adapter/"))
        assert files[f"support-triage-run{run['id']}-adapter/adapter_model.safetensors"] == cached.read_bytes()
