"""Shared fixtures: users with roles in a project, and API clients authenticated with real hashed tokens."""

import threading
import time

import pytest

from curation import demo, services
from curation.models import Example
from training.recipes import tiny_local

from .helpers import jsonl, post_jsonl, token_client

QUIET = 0.3
IDLE_QUERY = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
AND state IN ('active', 'idle in transaction')"""


@pytest.fixture(autouse=True)
def live_server_idle_before_flush(request):
    """A test against the live server ends while the server may still answer a request its browser sent last (an htmx
    swap, a lock renewal, the release a closing page sends with sendBeacon, which may reach the server after the test
    has ended): the database's flush (TRUNCATE) then deadlocks with it. Before the flush, wait (up to 10 s) until the
    live server has answered every request it took (no request thread left) and no other connection to the test
    database is in a statement or a transaction, both for QUIET seconds in a row (a beacon in flight arrives)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before this fixture, so flushed after its teardown
    yield
    from django.db import connection

    deadline, quiet_since = time.monotonic() + 10, None
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            busy = any(t.name.endswith("(process_request_thread)") for t in threading.enumerate())
            if not busy and connection.vendor == "postgresql":
                cursor.execute(IDLE_QUERY)
                busy = cursor.fetchone()[0] > 0
            quiet_since = None if busy else quiet_since or time.monotonic()
            if quiet_since is not None and time.monotonic() - quiet_since >= QUIET:
                return
            time.sleep(0.05)


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        return django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def lead(make_user):
    return make_user("lena")


@pytest.fixture
def expert(make_user):
    return make_user("maria")


@pytest.fixture
def outsider(make_user):
    return make_user("olga")


@pytest.fixture
def project(lead, expert):
    project = services.project_create(
        creator=lead,
        name="Support triage",
        slug="triage",
        labels=["P1", "P2", "P3", "P4"],
        system_prompt="You are a support agent.",
        output_format={"kind": "regex", "pattern": r"(?s)SEVERITY: P[1-4]\n.*"},
    )
    services.membership_set(project=project, user=expert, role="expert")
    return project


@pytest.fixture
def lead_api(lead):
    return token_client(lead)


@pytest.fixture
def expert_api(expert):
    return token_client(expert)


@pytest.fixture
def outsider_api(outsider):
    return token_client(outsider)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright. Playwright's sync API runs an event loop in the test thread; the ORM
    calls the tests make there are still synchronous and safe."""
    from playwright import sync_api

    from .browser_helpers import CHROMIUM, CHROMIUM_ARGS

    patch = pytest.MonkeyPatch()
    patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    patch.undo()


@pytest.fixture(scope="session")
def small_base(tmp_path_factory):
    """tiny-local with a short pretraining: enough for the runs' mechanics, not for accuracy. It lies in the models
    folder (FINELINE_MODELS_DIR, for the rest of the session and the processes tests start), where runs may name it."""
    from django.conf import settings

    models = tmp_path_factory.mktemp("models")
    settings.FINELINE_MODELS_DIR = str(models)
    rows = demo.generate(count=200)
    documents = tiny_local.corpus_documents(row["messages"] for row in rows)
    return str(tiny_local.build(documents, models, tiny_local.TinyConfig(pretrain_steps=40)))


@pytest.fixture
def version(project, lead, lead_api):
    """120 approved demo examples frozen into v1 (too few to be ready: runs need a written reason)."""
    rows = demo.generate(count=120)
    for row in rows:
        row["messages"][0]["content"] = "You are a support agent."
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return services.dataset_version_freeze(project=project, user=lead)
