"""Word search over messages: indexed in the background after an import, and complete before that too."""

import time

import pytest
from django.db import connection

from curation import selectors, services
from curation.models import Example

from ..helpers import chat, jsonl, post_jsonl, service_env, start_worker


def unindexed(project) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM curation_example WHERE project_id = %s AND search_vector IS NULL", [project.pk]
        )
        return cursor.fetchone()[0]


def search(project, q):
    return sorted(e.messages[1]["content"] for e in selectors.example_list(project=project, q=q))


@pytest.mark.django_db
@pytest.mark.postgresql  # the full-text index; on SQLite words are found by a scan
def test_search_finds_rows_before_and_after_indexing(project, lead_api):
    rows = [chat("Database unreachable in EU-West"), chat("Typo on the login page"), chat("database backup question")]
    post_jsonl(lead_api, project.slug, jsonl(rows))
    expected = ["Database unreachable in EU-West", "database backup question"]
    assert unindexed(project) == 3
    assert search(project, "database") == expected
    assert services.example_search_index(project_id=project.pk) == 3
    assert unindexed(project) == 0
    assert search(project, "database") == expected
    assert search(project, "database unreachable") == ["Database unreachable in EU-West"]
    assert search(project, "100%_off") == []


@pytest.mark.django_db
def test_an_edit_is_searchable_at_once(project, lead_api, expert):
    post_jsonl(lead_api, project.slug, jsonl([chat("printer jam")]))
    services.example_search_index(project_id=project.pk)
    example = Example.objects.get()
    messages = [dict(m) for m in example.messages]
    messages[1]["content"] = "scanner jam"
    services.example_update(example=example, user=expert, version=1, changes={"messages": messages})
    assert search(project, "scanner") == ["scanner jam"]
    assert search(project, "printer") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql
def test_a_real_worker_indexes_an_import_through_redis(project, lead_api):
    """The import enqueues the indexing on commit; a Celery worker consuming Redis does it."""

    env = service_env()
    worker = start_worker(env)
    try:
        response = post_jsonl(lead_api, project.slug, jsonl([chat(f"ticket {i}") for i in range(50)]))
        assert response.status_code == 201
        deadline = time.monotonic() + 60
        while unindexed(project) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert unindexed(project) == 0
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output, output
