"""PostgreSQL restarted under a running web app (gunicorn) and a Celery worker: both recover by themselves, with no
restart of their own (persistent connections are health-checked before reuse)."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from django.db import connection
from knox.models import AuthToken

from curation.models import QualityScan

from ..helpers import ROOT, service_env, start_gunicorn, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
sys.path.insert(0, str(ROOT / "bench"))


def restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, capture_output=True
    )


def get(url: str, token: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def post(url: str, token: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_scan_done(timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not QualityScan.objects.exclude(status__in=["succeeded", "failed"]).exists():
            return True
        time.sleep(0.3)
    return False


def test_web_and_worker_survive_a_postgresql_restart(project, lead, version, tmp_path):
    from import_bench import free_port, wait_for

    env = service_env(FINELINE_VAR_DIR=tmp_path)
    port = free_port()
    web = start_gunicorn(env, port, workers=2)
    worker = start_worker(env, queues="default")
    token = AuthToken.objects.create(user=lead)[1]
    base = f"http://127.0.0.1:{port}"
    scans = f"{base}/api/v1/projects/{project.slug}/quality-scans/"
    try:
        wait_for(port)
        assert get(f"{base}/healthz/")[0] == 200
        assert post(scans, token, {}) == 202 and wait_scan_done()  # the worker's connection is open and in use

        restart_postgresql()
        connection.close()  # this test's own connection died with the server
        answers = [get(f"{base}/healthz/")[0] for _ in range(10)]
        runs = get(f"{base}/api/v1/projects/{project.slug}/readiness/", token)
        assert post(scans, token, {}) == 202
        assert wait_scan_done(), "the worker did not take the scan after the restart"
    finally:
        web.terminate()
        web.wait(timeout=30)
        output = stop_worker(worker)
    print(f"\nafter a PostgreSQL restart: /healthz/ answered {answers}; the worker ran the next scan")
    assert answers == [200] * 10 and runs[0] == 200
    scans_done = list(QualityScan.objects.filter(project=project).values_list("status", "error"))
    # the import's scan, ours before the restart, ours after: all done by the same worker, none failed
    assert len(scans_done) >= 2 and all(status == "succeeded" for status, _ in scans_done), (scans_done, output[-2000:])
