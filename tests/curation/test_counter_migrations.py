"""The counters survive every migration on both databases: migrate from zero (as `make run` and a deployment do),
then import, review, bulk-update and delete, and compare the counters with a GROUP BY over the examples each time.

Each backend runs in a process of its own on a database of its own, exactly as `manage.py migrate` leaves it."""

import io
import json
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from curation import counters
from curation.models import Example, ExampleCounter

from ..helpers import ROOT, chat, jsonl, post_jsonl, service_env

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"fineline_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_counters_agree_after_migrating_from_zero(fresh_database, tmp_path):
    env = {**service_env(FINELINE_VAR_DIR=tmp_path), "DATABASE_URL": fresh_database, "REDIS_URL": ""}
    _run(env, "manage.py", "migrate", "--noinput")
    steps = json.loads(_run(env, "tests/curation/counter_scenario.py").strip().splitlines()[-1])
    assert steps["import"]["created"] == 60
    for step, result in steps.items():
        assert result["agree"], (step, result)
    assert steps["delete"]["fresh"] == steps["delete"]["maintained"] > 0
    # Migrating again is harmless, and the command finds nothing to fix.
    _run(env, "manage.py", "migrate", "--noinput")
    assert "0 groups differ" in _run(env, "manage.py", "rebuild_counters", "--check")


@pytest.mark.django_db
def test_rebuild_counters_repairs_lost_triggers_and_counts(project, lead_api):
    post_jsonl(lead_api, project.slug, jsonl(chat(f"ticket {i}", label=f"P{i % 4 + 1}") for i in range(12)))
    counters.uninstall(connection)  # what a SQLite table rebuild does to them
    ExampleCounter.objects.all().delete()
    Example.objects.filter(project=project, label="P1").update(status="approved")
    with pytest.raises(CommandError, match="disagree"):
        call_command("rebuild_counters", "--check", stdout=io.StringIO())
    call_command("rebuild_counters", stdout=io.StringIO())
    assert counters.installed(connection)
    assert counters.maintained_counts(connection) == counters.fresh_counts(connection)
    Example.objects.filter(project=project, label="P2").update(status="rejected")  # the triggers are back
    assert counters.maintained_counts(connection) == counters.fresh_counts(connection)


@pytest.mark.django_db
def test_migrate_puts_missing_triggers_back(project, lead_api):
    post_jsonl(lead_api, project.slug, jsonl(chat(f"ticket {i}") for i in range(5)))
    counters.uninstall(connection)
    Example.objects.filter(project=project).update(status="approved")
    call_command("migrate", verbosity=0)
    assert counters.installed(connection)
    assert counters.maintained_counts(connection) == counters.fresh_counts(connection)
