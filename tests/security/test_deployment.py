"""The deployment files: only nginx is published, gunicorn answers it on the compose network, both run the committed
configuration, and the image leaves secrets and local data out."""

import os
import re
import runpy
import shutil
import subprocess

import yaml

from ..helpers import NGINX_TEMPLATE, ROOT

DEFAULT_BODY_LIMIT = 100 * 1024 * 1024  # config/settings/components/fineline.py's FINELINE_IMPORT_MAX_BODY_BYTES
STORE_ENV = ("FINELINE_ARTIFACT_STORE", "FINELINE_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
APP_SERVICES = ("web", "worker", "beat", "gpu-worker", "chat-worker")


def compose_services() -> dict:
    """docker-compose.yml's services as docker-compose resolves them when it is installed (validating the file on the
    way), else as YAML with the `${VAR:-default}` defaults filled in."""
    binary = shutil.which("docker-compose")
    if binary:
        env = {**os.environ, "DJANGO_SECRET_KEY": "compose-config-check-" + "x" * 40}
        for name in ("WEB_PORT", "FINELINE_IMPORT_MAX_BODY_BYTES", "FINELINE_TRUSTED_PROXY", "MINIO_PORT", *STORE_ENV):
            env.pop(name, None)
        check = subprocess.run([binary, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        rendered = subprocess.run([binary, "config"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        return yaml.safe_load(rendered.stdout)["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    text = re.sub(r"\$\{\w+:[-?]([^}]*)\}", r"\1", text)
    return yaml.safe_load(text)["services"]


def published_targets(service: dict) -> list[int]:
    """Container ports of `ports:` in either form ("8000:80", or docker-compose config's {target: 80, ...})."""
    return [
        int(port["target"] if isinstance(port, dict) else str(port).rsplit(":", 1)[-1])
        for port in service.get("ports", [])
    ]


def test_only_nginx_is_published_and_gunicorn_sits_behind_it():
    services = compose_services()
    default = {name: service for name, service in services.items() if not service.get("profiles")}
    published = {name: published_targets(service) for name, service in default.items() if service.get("ports")}
    assert published == {"nginx": [80]}
    web, nginx = services["web"], services["nginx"]
    assert [str(port) for port in web["expose"]] == ["8000"]
    assert "gunicorn -c deploy/gunicorn.conf.py config.wsgi:application" in web["command"]
    environment = nginx["environment"]
    assert (environment["FINELINE_UPSTREAM"], str(environment["FINELINE_PROXY_LISTEN"])) == ("web:8000", "80")
    # nginx refuses what the app would refuse, from the same setting.
    assert int(environment["FINELINE_IMPORT_MAX_BODY_BYTES"]) == DEFAULT_BODY_LIMIT
    assert int(web["environment"]["FINELINE_IMPORT_MAX_BODY_BYTES"]) == DEFAULT_BODY_LIMIT
    # The login lockout counts the address nginx saw, not one a client wrote into X-Forwarded-For.
    assert str(web["environment"]["FINELINE_PROXY_COUNT"]) == "1"
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    mounts = [
        volume if isinstance(volume, str) else f"{volume['source']}:{volume['target']}" for volume in nginx["volumes"]
    ]
    assert any("deploy/nginx/default.conf.template:/etc/nginx/templates/default.conf.template" in m for m in mounts)


def test_the_image_runs_the_same_gunicorn_configuration():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi:application"]' in dockerfile
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert (config["worker_class"], config["workers"], config["bind"]) == ("sync", 3, "0.0.0.0:8000")
    # nginx waits for an answer as long as gunicorn lets a worker work on one.
    template = NGINX_TEMPLATE.read_text()
    assert f"proxy_read_timeout {config['timeout']}s;" in template


def test_the_proxy_holds_slow_clients_and_buffers_both_ways():
    # Each directive's first value (one directive a line).
    directives = dict(re.findall(r"^\s*(\w+)\s+([^;\n]+);", NGINX_TEMPLATE.read_text(), flags=re.MULTILINE)[::-1])
    assert directives["client_header_timeout"] == "10s"
    assert directives["client_body_timeout"] == "30s"
    assert directives["send_timeout"] == "30s"
    assert directives["keepalive_timeout"] == "15s"
    assert directives["client_max_body_size"] == "${FINELINE_IMPORT_MAX_BODY_BYTES}"
    assert (directives["proxy_request_buffering"], directives["proxy_buffering"]) == ("on", "on")


def test_secrets_and_local_data_stay_out_of_the_image_and_the_repository():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", "var/", ".venv/", ".git/", "test-artifacts/", "bench/out/", "__pycache__/"} <= ignored
    check = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert check.returncode == 0, ".env is not in .gitignore"


def test_the_optional_store_is_a_profile_every_app_service_is_pointed_at_without_a_default_secret():
    services = compose_services()
    store = {name for name, service in services.items() if "store" in service.get("profiles", [])}
    assert store == {"minio", "minio-bucket"}
    # Nodes on other machines reach the store's S3 port; the web app stays behind nginx.
    assert published_targets(services["minio"]) == [9000]
    for name in APP_SERVICES:
        assert set(STORE_ENV) <= set(services[name]["environment"]), name
    # Unset in .env, the store has no password at all (MinIO refuses to start), never a well-known one.
    assert not services["minio"]["environment"].get("MINIO_ROOT_PASSWORD")
    assert not services["web"]["environment"].get("FINELINE_ARTIFACT_STORE")  # the local default
