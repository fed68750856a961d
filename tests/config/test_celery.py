"""`make run` needs no server: a real worker consumes tasks from kombu's filesystem transport."""

import os
import subprocess
import sys
import time
from pathlib import Path

from ..helpers import start_worker

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_consumes_the_filesystem_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "FINELINE_VAR_DIR": str(tmp_path)})
    send = "from curation.tasks import example_search_index; example_search_index.delay(1)"
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {send}"], cwd=ROOT, env=env, check=True, timeout=60
    )
    queue = tmp_path / "broker" / "queue"
    assert len(list(queue.iterdir())) == 1
    worker = start_worker(env, queues="default,gpu", loglevel="INFO")
    try:
        deadline = time.monotonic() + 60
        while list(queue.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(queue.iterdir()) == []
        time.sleep(1)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode()
    assert "curation.example_search_index" in output and "succeeded" in output, output
    assert "No hostname was supplied" not in output
