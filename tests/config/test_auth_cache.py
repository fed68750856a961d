"""The signed-in user read from the cache (core/auth.py): no query for it while it stays the same, and a password
change, a deactivation or a deletion ends the session at the next request, as Django's own check does."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def _user_queries(client, path: str) -> tuple[int, int]:
    """The answer's status and how many statements read the user table."""
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, sum('FROM "auth_user"' in query["sql"] for query in queries.captured_queries)


@pytest.fixture
def signed_in(client, expert, project):
    cache.clear()
    client.force_login(expert)
    return client


def test_the_user_is_read_once_then_from_the_cache(signed_in, project):
    assert _user_queries(signed_in, f"/projects/{project.slug}/") == (200, 1)
    assert _user_queries(signed_in, f"/projects/{project.slug}/") == (200, 0)
    assert _user_queries(signed_in, f"/projects/{project.slug}/review/") == (200, 0)


@pytest.mark.parametrize("change", ["password", "deactivated", "deleted"])
def test_a_changed_user_is_signed_out_at_the_next_request(signed_in, project, expert, change):
    assert signed_in.get(f"/projects/{project.slug}/").status_code == 200  # cached now
    if change == "password":
        expert.set_password("a-new-password-1")
        expert.save()
    elif change == "deactivated":
        expert.is_active = False
        expert.save()
    else:
        expert.delete()
    answer = signed_in.get(f"/projects/{project.slug}/")
    assert answer.status_code == 302 and answer.url.startswith("/login/"), answer


def test_another_session_of_a_changed_password_fails_even_when_cached_first(client, expert, project, django_user_model):
    """The cached copy is only used while the session's hash verifies against it: a session made with the new
    password works, the old one does not."""
    cache.clear()
    client.force_login(expert)
    assert client.get(f"/projects/{project.slug}/").status_code == 200
    fresh = django_user_model.objects.get(pk=expert.pk)
    fresh.set_password("a-new-password-2")
    fresh.save()
    assert client.get(f"/projects/{project.slug}/").status_code == 302
    client.force_login(fresh)
    assert client.get(f"/projects/{project.slug}/").status_code == 200
