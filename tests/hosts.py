"""Test hosts on one machine: network namespaces joined by veth pairs to a bridge, each with its own disk folder.

    control  10.77.N.1   PostgreSQL (its own cluster), Redis, the S3-compatible store (moto's server), the web app
                         (gunicorn) and a worker on the `default` queue with the periodic recovery (celery beat)
    a, b     10.77.N.2/3 one Celery worker each on the `gpu` queue, FINELINE_VAR_DIR an empty folder of its own
    (this)   10.77.N.9   the test itself, talking HTTP to the web app like any client

Nothing is shared between the hosts but the network: each process gets the control host's addresses, never
127.0.0.1. `link_down` cuts a host off (its veth goes down); `stop` kills a host's processes. Needs root (ip netns).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .helpers import ROOT, S3_ENV, s3_bucket, wait_for_port, worker_command


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


class Hosts:
    def __init__(self, folder: Path, models_dir: str):
        number = os.getpid() % 1000
        self.prefix = f"fl{number}"
        self.subnet = f"10.77.{number % 250 + 1}"
        self.control_ip = f"{self.subnet}.1"
        self.addresses = {"a": f"{self.subnet}.2", "b": f"{self.subnet}.3"}
        self.folder = folder
        self.models_dir = models_dir
        self.processes: dict[str, list[subprocess.Popen]] = {"control": [], "a": [], "b": []}
        self.pg_dir: Path | None = None

    def ns(self, host: str) -> str:
        return f"{self.prefix}{host[0]}"

    # The network ----------------------------------------------------------------------------------------------------
    def __enter__(self) -> Hosts:
        control = self.ns("control")
        for host in ("control", "a", "b"):
            sh("ip", "netns", "add", self.ns(host))
            sh("ip", "-n", self.ns(host), "link", "set", "lo", "up")
        sh("ip", "-n", control, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", control, "addr", "add", f"{self.control_ip}/24", "dev", "br0")
        sh("ip", "-n", control, "link", "set", "br0", "up")
        for host, address in [*self.addresses.items(), ("t", f"{self.subnet}.9")]:
            outer, inner = f"{self.prefix}{host}0", f"{self.prefix}{host}1"
            sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", outer, "netns", control)
            sh("ip", "-n", control, "link", "set", outer, "master", "br0", "up")
            if host != "t":
                sh("ip", "link", "set", inner, "netns", self.ns(host))
            where = ["-n", self.ns(host)] if host != "t" else []
            sh("ip", *where, "addr", "add", f"{address}/24", "dev", inner)
            sh("ip", *where, "link", "set", inner, "up")
        return self

    def __exit__(self, *exc) -> None:
        for host in ("a", "b", "control"):
            self.stop(host)
        for host in ("control", "a", "b"):
            subprocess.run(["ip", "netns", "delete", self.ns(host)], capture_output=True)
        subprocess.run(["ip", "link", "delete", f"{self.prefix}t1"], capture_output=True)
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)

    def link_down(self, host: str) -> None:
        """The host loses its network: its end of the veth goes down (its processes live on, cut off)."""
        sh("ip", "-n", self.ns(host), "link", "set", f"{self.prefix}{host}1", "down")

    def link_up(self, host: str) -> None:
        sh("ip", "-n", self.ns(host), "link", "set", f"{self.prefix}{host}1", "up")

    # Processes ------------------------------------------------------------------------------------------------------
    def run(self, host: str, command: list[str], env: dict | None = None, user: str | None = None, **options):
        prefix = ["ip", "netns", "exec", self.ns(host)] + (["runuser", "-u", user, "--"] if user else [])
        process = subprocess.Popen(prefix + command, env=env, start_new_session=True, **options)
        self.processes[host].append(process)
        return process

    def stop(self, host: str, sig: int = signal.SIGKILL) -> None:
        for process in self.processes[host]:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes[host] = []

    def var_dir(self, host: str) -> Path:
        return self.folder / host / "var"

    def env(self, host: str, **extra) -> dict:
        """A Fineline process's environment on `host`: the control host's services, its own data folder."""
        ip = self.control_ip
        keep = {key: value for key, value in os.environ.items() if not key.startswith(("FINELINE_", "DJANGO_"))}
        return {
            **keep,
            **S3_ENV,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"postgres://postgres@{ip}:5432/fineline",
            "REDIS_URL": f"redis://{ip}:6379/0",
            "FINELINE_VAR_DIR": str(self.var_dir(host)),
            "FINELINE_MODELS_DIR": self.models_dir,
            "FINELINE_ARTIFACT_STORE": "s3://fineline/artifacts",
            "FINELINE_S3_ENDPOINT_URL": f"http://{ip}:9000",
            "FINELINE_RUN_LEASE_SECONDS": "5",
            "FINELINE_EVALUATION_LEASE_SECONDS": "5",
            "FINELINE_RECOVERY_INTERVAL": "1",
            **{key: str(value) for key, value in extra.items()},
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns("control"), sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env("control"), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start_control(self) -> None:
        """PostgreSQL (a cluster of its own), Redis, the S3 store with its bucket, the schema and the demo project,
        the web app and the default worker with beat."""
        ip = self.control_ip
        self.pg_dir = Path(tempfile.mkdtemp(prefix="fineline-pg-"))
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        sh("runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")
        settings = ["-c", f"listen_addresses={ip}", "-c", f"unix_socket_directories={self.pg_dir}", "-c", "fsync=off"]
        self.run("control", [str(bin_dir / "postgres"), "-D", str(data), *settings], user="postgres",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self.run("control", ["redis-server", "--bind", ip, "--port", "6379", "--save", "", "--appendonly", "no",
                  "--protected-mode", "no"],
                 stdout=subprocess.DEVNULL)  # fmt: skip
        self.run("control", [str(Path(sys.executable).with_name("moto_server")), "-H", ip, "-p", "9000"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for port in (5432, 6379, 9000):
            wait_for_port(ip, port)
        sh("ip", "netns", "exec", self.ns("control"), "runuser", "-u", "postgres", "--", str(bin_dir / "createdb"),
           "-h", ip, "fineline")  # fmt: skip
        s3_bucket(f"http://{ip}:9000", "fineline")
        self.manage("migrate", "--noinput")
        self.manage("load_demo", "--count", "200")
        web = self.env("control", GUNICORN_BIND=f"{ip}:8000", GUNICORN_WORKERS=2, DJANGO_ALLOWED_HOSTS=ip,
                       DJANGO_DEBUG=0)  # fmt: skip
        command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi:application"]
        self.run("control", command, env=web, cwd=ROOT)
        self.worker("control", "default", "--beat", "--schedule", str(self.folder / "control" / "beat"))
        wait_for_port(ip, 8000, seconds=60)

    def worker(self, host: str, queues: str, *extra: str) -> subprocess.Popen:
        self.var_dir(host).mkdir(parents=True, exist_ok=True)
        command = worker_command(queues, extra=extra)
        log = (self.folder / f"{host}-worker.log").open("ab")
        return self.run(host, command, env=self.env(host), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def wipe(self, host: str) -> None:
        """The host's disk is replaced by an empty one."""
        shutil.rmtree(self.var_dir(host), ignore_errors=True)

    # The API, as a client on the network ------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://{self.control_ip}:8000{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait(self, predicate, seconds: float, what: str, poll: float = 0.5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"{what}: not after {seconds} s")
