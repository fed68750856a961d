"""The embedded default, exactly as a newcomer runs it: `make run` (SQLite, kombu's filesystem broker, runserver and a
Celery worker with its beat, the demo loaded) in a folder of its own, driven over HTTP and in a real Chromium.

Nothing here touches PostgreSQL or Redis: a bug that only the default path has turns this suite red. The numbers the
pages and the API show are compared with the SQLite file itself."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..browser_helpers import ARTIFACTS, PANEL_CHANGED, log_in, newcomer_loop
from ..helpers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SLUG = "support-triage"


class EmbeddedApp:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "FINELINE_TEST_DB")
        }
        self.env["FINELINE_VAR_DIR"] = str(folder)
        # A small import is answered within its request, a larger one queued for the worker (test_a_large_import...).
        self.env["FINELINE_IMPORT_SYNC_MAX_BYTES"] = str(64 * 1024)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "make-run.log"
        self.process = None
        self._token = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                ["make", "run", "HOST=127.0.0.1", f"PORT={self.port}"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz/", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise AssertionError("make run did not answer in time:\n" + self.output())

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def sql(self, query: str, *params) -> list[tuple]:
        with sqlite3.connect(self.folder / "fineline.sqlite3", timeout=30) as db:
            return db.execute(query, params).fetchall()

    def status_counts(self) -> dict[str, int]:
        rows = self.sql(
            "SELECT e.status, count(*) FROM curation_example e JOIN curation_project p ON p.id = e.project_id"
            " WHERE p.slug = ? GROUP BY 1",
            SLUG,
        )
        return dict(rows)

    def token(self) -> str:
        if self._token is None:
            done = subprocess.run(
                [sys.executable, "manage.py", "create_api_token", "lena"],
                cwd=ROOT, env=self.env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            self._token = done.stdout.strip().splitlines()[-1]
        return self._token

    def api(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        request = urllib.request.Request(f"{self.url}/api/v1/projects/{SLUG}/{path}", data=body, method=method)
        request.add_header("Authorization", f"Token {self.token()}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    return answer.status, answer.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()
            except urllib.error.URLError:  # runserver's autoreloader restarts when a source file changes
                if attempt == 4:
                    raise
                time.sleep(2)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = EmbeddedApp(tmp_path_factory.mktemp("make-run"))
    try:
        app.start()
        yield app
    finally:
        app.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "embedded-make-run.log").write_bytes(app.log.read_bytes() if app.log.exists() else b"")
    assert "Traceback" not in app.output(), app.output()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context
    context.close()


def test_the_dashboard_and_readiness_count_what_the_database_holds(app, context):
    counts = app.status_counts()
    assert sum(counts.values()) > 500 and counts["approved"] > 100  # the demo is loaded
    page = log_in(context, app.url, "lena", "fineline-demo")
    page.goto(f"{app.url}/projects/{SLUG}/")
    progress = page.inner_text("main p:has(progress)")
    reviewed = sum(n for status, n in counts.items() if status != "pending")
    assert f"{reviewed} / {sum(counts.values())} reviewed" in progress
    assert f"{counts['approved']} approved examples" in page.inner_text("[data-check=min_examples]")
    stats = json.loads(app.api("GET", "stats/")[1])
    assert {status: stats["progress"][status] for status in counts} == counts
    approved_by_label = dict(
        app.sql("SELECT label, count(*) FROM curation_example WHERE status = 'approved' AND label != '' GROUP BY 1")
    )
    assert stats["approved_by_label"] == approved_by_label
    readiness = json.loads(app.api("GET", "readiness/")[1])
    checks = {check["id"]: check for check in readiness["checks"]}
    assert checks["min_examples"]["detail"].startswith(f"{counts['approved']} approved examples")
    assert "No label set" not in checks["label_balance"]["detail"]


def _tickets(count: int, question: str, label: str, answer: str) -> bytes:
    """`count` JSONL rows of one label, the question numbered by {i}."""
    rows = [
        {"messages": [{"role": "user", "content": question.format(i=i)}, {"role": "assistant", "content": answer}],
         "label": label}
        for i in range(count)
    ]  # fmt: skip
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_import_review_and_export(app, context):
    before = app.status_counts()
    body = _tickets(5, "Embedded default check {i}: the invoice page is blank for everyone.", "P1",
                    "SEVERITY: P1\nIMPACT: every customer\nACTION: page the on-call")  # fmt: skip
    status, answer = app.api("POST", "imports/", body, "application/x-ndjson")
    assert status == 201, answer
    assert json.loads(answer)["created"] == 5
    assert app.status_counts()["pending"] == before["pending"] + 5

    page = log_in(context, app.url, "maria", "fineline-demo")
    page.goto(f"{app.url}/projects/{SLUG}/review/")
    page.wait_for_selector("[data-review-panel]")
    example = int(page.get_attribute("[data-review-panel]", "data-example"))
    page.keyboard.press("1")  # label P1
    page.keyboard.press("a")  # approve
    page.wait_for_function(PANEL_CHANGED, arg=str(example))
    assert app.sql("SELECT status, label FROM curation_example WHERE id = ?", example) == [("approved", "P1")]
    assert app.sql("SELECT count(*) FROM curation_review WHERE example_id = ?", example) == [(1,)]
    after = app.status_counts()
    assert after["approved"] == before["approved"] + 1
    stats = json.loads(app.api("GET", "stats/")[1])
    assert stats["progress"]["approved"] == after["approved"]

    status, exported = app.api("GET", "export/?status=approved")
    assert status == 200
    lines = [json.loads(line) for line in exported.splitlines() if line.strip()]
    assert len(lines) == after["approved"]


def test_a_large_import_is_queued_and_imported_by_the_worker(app):
    """Over FINELINE_IMPORT_SYNC_MAX_BYTES the body is spooled and answered 202; make run's worker (filesystem
    broker, SQLite) imports it, and the quality scan that follows an import still runs."""
    body = _tickets(2000, "Embedded queued import {i}: the export button does nothing.", "P3",
                    "SEVERITY: P3\nIMPACT: one team\nACTION: reply with the workaround")  # fmt: skip
    body += b'{"messages": "none"}\n'
    assert len(body) > 64 * 1024
    last_scan = app.sql("SELECT coalesce(max(id), 0) FROM curation_qualityscan")[0][0]
    status, answer = app.api("POST", "imports/?mode=partial", body, "application/x-ndjson")
    assert status == 202, answer
    job = json.loads(answer)
    assert job["status"] == "queued" and job["url"].endswith(f"/imports/{job['id']}/")
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = json.loads(app.api("GET", f"imports/{job['id']}/")[1])
    assert (job["status"], job["created"], job["rejected"], job["total_lines"]) == ("partial", 2000, 1, 2001)
    assert job["errors"][0]["line"] == 2001
    assert app.sql("SELECT count(*) FROM curation_example WHERE import_job_id = ?", job["id"]) == [(2000,)]
    assert not list((app.folder / "imports").iterdir())  # the spooled body is gone
    deadline = time.monotonic() + 120
    while not app.sql("SELECT id FROM curation_qualityscan WHERE status = 'succeeded' AND id > ?", last_scan):
        assert time.monotonic() < deadline, "no quality scan after the import"
        time.sleep(0.5)


def test_the_newcomers_loop_from_login_to_verdict(app, context):
    trained, total = newcomer_loop(context, app.url, "embedded-verdict.png")
    (evaluation_id,) = app.sql("SELECT id FROM evaluation_evaluation")[0]
    evaluation = json.loads(app.api("GET", f"evaluations/{evaluation_id}/")[1])
    results = {entry["system"]: entry["metrics"] for entry in evaluation["results"] if entry["status"] == "succeeded"}
    print(f"\nembedded default (SQLite, filesystem broker): trained after {trained:.0f} s, verdict after {total:.0f} s")
    assert evaluation["status"] == "succeeded"
    assert results["fine_tuned"]["format_accuracy"] >= 0.95
    for baseline in ("base_zero_shot", "base_best_prompt"):
        assert results["fine_tuned"]["format_accuracy"] > results[baseline]["format_accuracy"]
    assert evaluation["verdict"]["summary"].startswith("Fine-tuned")
    # Both fed back to the dashboard: the base model's score to beat, and the tokenizer the token counts use.
    query = "SELECT baseline_score, tokenizer FROM curation_project WHERE slug = ?"
    ((baseline_score, tokenizer),) = app.sql(query, SLUG)
    assert baseline_score is not None and tokenizer
