"""Deployment settings: production passes Django's deploy checks; the API schema generates without warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_has_no_warnings_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="q8Zr-3vKp!mW2xL9@tYb7#nF4cJd6&hS1uE0^aG5*oR-iVw8yB3kT",
        DJANGO_ALLOWED_HOSTS="fineline.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_SECRET_KEY="")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_openapi_schema_generates_without_warnings(tmp_path):
    result = manage(
        "spectacular",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yml"),
        DJANGO_SETTINGS_MODULE="config.settings.test",
    )
    assert result.returncode == 0, result.stderr
    schema = (tmp_path / "schema.yml").read_text()
    for path in [
        "/api/v1/projects/{slug}/imports/",
        "/api/v1/projects/{slug}/examples/{id}/",
        "/api/v1/projects/{slug}/export/",
    ]:
        assert path in schema


@pytest.mark.django_db
def test_a_nul_character_is_a_400_in_a_query_a_form_or_a_json_body(client, lead_api, project, lead):
    client.force_login(lead)
    assert client.get(f"/projects/{project.slug}/examples/?q=a%00b").status_code == 400
    assert client.post(f"/projects/{project.slug}/settings/", {"tokenizer": "x\x00"}).status_code == 400
    response = lead_api.patch(f"/api/v1/projects/{project.slug}/", {"name": "a\x00b"}, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_the_filesystem_broker_keeps_its_control_folder_under_the_var_dir(tmp_path):
    """kombu's default is ./control beside the code, which ended up committed."""
    code = "from django.conf import settings; print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'])"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", FINELINE_VAR_DIR=str(tmp_path), REDIS_URL="")
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == str(tmp_path / "broker" / "control"), result.stderr
    assert (tmp_path / "broker" / "control").is_dir()
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_importing_the_settings_creates_no_folder(tmp_path):
    """The settings only name folders; Django's start (core/apps.py) makes them."""
    var_dir = tmp_path / "var"
    code = (
        "import importlib\n"
        "for name in ('local', 'test', 'test_sqlite'):\n"
        "    importlib.import_module(f'config.settings.{name}')\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(FINELINE_VAR_DIR=str(var_dir), REDIS_URL="")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not var_dir.exists()
    assert list(tmp_path.iterdir()) == []
