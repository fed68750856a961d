"""Helpers to build chat rows, send them to the import API, and run a real Celery worker."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from knox.models import AuthToken
from rest_framework.test import APIClient


def token_client(user) -> APIClient:
    client = APIClient()
    _, raw = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def chat(user: str, answer: str = "SEVERITY: P4\nIMPACT: none\nACTION: reply", **extra) -> dict:
    row = {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }
    row.update(extra)
    return row


def jsonl(rows) -> bytes:
    return b"".join((row if isinstance(row, bytes) else orjson.dumps(row)) + b"\n" for row in rows)


def post_jsonl(client, slug: str, body: bytes, query: str = "", content_type: str = "application/x-ndjson"):
    return client.generic("POST", f"/api/v1/projects/{slug}/imports/{query}", body, content_type=content_type)


ROOT = Path(__file__).resolve().parent.parent


def service_env(**extra) -> dict:
    """The environment of a process (worker, web server, command) that works on the test database and Redis."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "FINELINE_MODELS_DIR": str(settings.FINELINE_MODELS_DIR or ""),
        **{key: str(value) for key, value in extra.items()},
    }


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    """The web app as production serves it (gunicorn, sync workers); the caller waits for the port and stops it."""
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--log-level", "warning"]
    env = {**env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DJANGO_DEBUG": "0"}
    return subprocess.Popen(command, cwd=ROOT, env=env)


def start_worker(env: dict, queues: str = "default", loglevel: str = "WARNING", extra=()) -> subprocess.Popen:
    """A real Celery worker (solo pool) in a process group of its own; the caller stops it (`stop_worker`)."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--queues",
        queues,
        "--pool",
        "solo",
        "--loglevel",
        loglevel,
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        *extra,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    """Signal the worker's whole process group (an embedded beat too); returns what it printed."""
    try:
        os.killpg(worker.pid, sig)
    except ProcessLookupError:
        pass
    try:
        output = worker.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate()[0]
    return output.decode(errors="replace")
