"""Imports on SQLite (what `make run` uses), in a process of its own on a fresh database: the migration that gives
past imports their status, then CSV and Parquet imports through a mapping with the command."""

import json
import subprocess
import sys

import pytest

from ..helpers import ROOT, service_env

pytestmark = pytest.mark.slow

BEFORE = """
from django.contrib.auth.models import User
from django.db import connection
from curation import services
lead = User.objects.create_user("lena")
project = services.project_create(creator=lead, name="T", slug="t", labels=["P1", "P2", "P3", "P4"])
jobs = [("succeeded", 3, 2, 0, 1), ("succeeded", 2, 0, 0, 2), ("succeeded", 0, 0, 0, 0), ("succeeded", 2, 1, 1, 0),
        ("failed", 2, 0, 0, 1), ("succeeded", 2, 0, 1, 1)]
with connection.cursor() as cursor:
    for status, total, created, duplicates, rejected in jobs:
        cursor.execute(
            "INSERT INTO curation_importjob (project_id, source, format, mode, status, total_lines, created_count,"
            " duplicate_count, rejected_count, errors, errors_truncated, created_at)"
            " VALUES (%s, 'api', 'auto', 'partial', %s, %s, %s, %s, %s, '[]', 0, CURRENT_TIMESTAMP)",
            [project.pk, status, total, created, duplicates, rejected],
        )
"""
AFTER = """
from curation.models import ImportJob
print(list(ImportJob.objects.order_by("id").values_list("status", flat=True)))
"""


def run(env, *args, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 or not check, done.stdout + done.stderr
    return done


def test_imports_on_sqlite(tmp_path):
    env = {**service_env(FINELINE_VAR_DIR=tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env["REDIS_URL"] = ""
    run(env, "manage.py", "migrate", "--noinput")
    run(env, "manage.py", "migrate", "curation", "0012", "--noinput")  # and back: it reverses too
    run(env, "manage.py", "shell", "-c", BEFORE)
    run(env, "manage.py", "migrate", "--noinput")
    statuses = run(env, "manage.py", "shell", "-c", AFTER).stdout.strip().splitlines()[-1]
    assert statuses == str(["partial", "failed", "failed", "succeeded", "failed", "partial"])

    table = tmp_path / "dolly.csv"
    table.write_text(
        "instruction,context,response,category,source\n"
        'Triage this,"db down,\nin eu-1",SEVERITY: P1,P1,kb\n'
        "Triage a typo,,SEVERITY: P4,P4,\n"
        "No answer,,,P2,\n"
    )
    mapping = json.dumps({"user": ["instruction", "context"], "assistant": "response", "label": "category"})
    done = run(env, "manage.py", "import_examples", "t", str(table), "--mapping", mapping, "--mode", "partial")
    report = json.loads(done.stdout)
    assert (report["status"], report["created"], report["ignored_keys"]) == ("partial", 2, {"source": 1})
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(5, "missing_value")]
    # Again: every valid line a duplicate, the bad one still bad.
    report = json.loads(run(env, "manage.py", "import_examples", "t", str(table), "--mapping", mapping,
                            "--mode", "partial").stdout)  # fmt: skip
    assert (report["status"], report["created"], report["duplicates"]) == ("partial", 0, 2)
    bad = tmp_path / "bad.csv"
    bad.write_text("instruction,response\nonly a question,\n")
    done = run(
        env, "manage.py", "import_examples", "t", str(bad), "--mapping", mapping, "--mode", "partial", check=False
    )
    assert done.returncode == 1 and "Every line (1) was rejected" in done.stderr
