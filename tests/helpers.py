"""Helpers to build chat rows, send them to the import API, and run a real Celery worker, gunicorn and nginx."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
    """The web app as production serves it (gunicorn with the deployment's deploy/gunicorn.conf.py: sync workers); the
    caller waits for the port and stops it."""
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi:application"]
    command += ["--log-level", "warning"]
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_DEBUG": "0",
    }
    return subprocess.Popen(command, cwd=ROOT, env=env)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "default.conf.template"


def nginx_config(variables: dict[str, str], prefix: Path) -> str:
    """The deployment's nginx template rendered as the official image renders it (each ${NAME} it is given replaced,
    envsubst-style), inside a main configuration that keeps the pid, logs and temporary files under `prefix`."""
    template = NGINX_TEMPLATE.read_text()
    server = re.sub(r"\$\{(\w+)\}", lambda match: variables.get(match[1], match[0]), template)
    assert "${" not in server, "a template variable was not given"
    temp_paths = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi"))
    temp_paths += "\n" + "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("uwsgi", "scgi"))
    # Workers of a root master run as `nobody`, who could not enter pytest's private temporary folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n{user}"
        f"events {{\n    worker_connections 1024;\n}}\nhttp {{\n    access_log {prefix / 'access.log'};\n{temp_paths}\n"
        f"{server}\n}}\n"
    )


def start_nginx(prefix: Path, *, listen: int, upstream: str, **variables: str) -> subprocess.Popen:
    """nginx (Debian's) in the foreground, in front of `upstream`, from the deployment's template; the caller waits for
    the port and stops it. `variables` override the template's other values (body limit, trusted proxy)."""
    from django.conf import settings

    values = {
        "FINELINE_PROXY_LISTEN": f"127.0.0.1:{listen}",
        "FINELINE_UPSTREAM": upstream,
        "FINELINE_IMPORT_MAX_BODY_BYTES": str(settings.FINELINE_IMPORT_MAX_BODY_BYTES),
        # TEST-NET-1: no terminator in front, the test's own connections are clients like any other.
        "FINELINE_TRUSTED_PROXY": "192.0.2.1",
        **variables,
    }
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(values, prefix))
    subprocess.run([NGINX, "-t", "-q", "-p", str(prefix), "-c", str(config)], check=True)
    return subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(config)])


def worker_command(queues: str, loglevel: str = "WARNING", extra=(), pool: str = "solo") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", queues, "--pool", pool,
            "--loglevel", loglevel, "--without-heartbeat", "--without-gossip", "--without-mingle", *extra]  # fmt: skip


def start_worker(
    env: dict, queues: str = "default", loglevel: str = "WARNING", extra=(), pool: str = "solo", nice: int = 0
) -> subprocess.Popen:
    """A real Celery worker (solo pool unless told) in a process group of its own; the caller stops it (`stop_worker`).
    Time limits need the prefork pool, as docker-compose runs it. `nice`: its CPU priority, lowered by that much."""
    command = worker_command(queues, loglevel, extra, pool)
    if nice:
        command = ["nice", "-n", str(nice), *command]
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


@contextlib.contextmanager
def heartbeat_beating(model, pk: int, worker: str = "me:1"):
    """The job held by `worker` through a lease that runs out now, its heartbeat beating for 1.5 s (set the lease to
    1 s) before the body runs; the heartbeat stops on the way out."""
    from django.utils import timezone

    from core import leases

    model.objects.filter(pk=pk).update(status="running", lease_owner=worker, lease_until=timezone.now())
    heartbeat = leases.Heartbeat(model, pk, worker)
    heartbeat.start()
    try:
        time.sleep(1.5)
        yield
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host: str, port: int, seconds: float = 30, process: subprocess.Popen | None = None) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {seconds} s")


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "fineline-test",
    "AWS_SECRET_ACCESS_KEY": "fineline-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_s3_server(host: str = "127.0.0.1", port: int | None = None, bucket: str = "fineline") -> tuple:
    """An S3-compatible server (moto's server mode, in a process of its own) with `bucket` created; returns the
    process and its endpoint URL. The code under test talks to it as to any S3 endpoint."""
    port = port or free_port(host)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(host, port, process=server)
    endpoint = f"http://{host}:{port}"
    s3_bucket(endpoint, bucket)
    return server, endpoint


def s3_bucket(endpoint: str, bucket: str) -> None:
    import s3fs

    key, secret = S3_ENV["AWS_ACCESS_KEY_ID"], S3_ENV["AWS_SECRET_ACCESS_KEY"]
    s3fs.S3FileSystem(endpoint_url=endpoint, key=key, secret=secret, skip_instance_cache=True).mkdir(bucket)


def in_thread(work) -> tuple:
    """Start `work()` in a thread of its own (its own database connection, closed at the end), as a worker would run
    a job beside the test; returns the thread and a dict that holds `work`'s result under "result"."""
    import threading

    from django.db import connection

    outcome: dict = {}

    def run():
        try:
            outcome["result"] = work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
