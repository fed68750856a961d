"""Failed logins lock an account and an address out (django-axes) on the login page, the admin and the API token
endpoint; a locked-out attempt is refused before any password is hashed, the costly part an attacker leaned on
(six clients guessing passwords raised /healthz/ from 3 ms to 2 s)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import base_user
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
LIMIT = 10


@pytest.fixture
def hashed(monkeypatch):
    """How many passwords were checked (each a full PBKDF2 run in production)."""
    calls = []
    real = base_user.check_password

    def counting(password, encoded, *args, **kwargs):
        calls.append(password)
        return real(password, encoded, *args, **kwargs)

    monkeypatch.setattr(base_user, "check_password", counting)
    return calls


def login(client, username, password, address="203.0.113.7", **extra):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def test_an_account_is_locked_after_the_limit_and_no_password_is_checked(lead, client, hashed):
    for _ in range(LIMIT - 1):
        assert login(client, "lena", "wrong").status_code == 200  # the form again, with its error
    assert login(client, "lena", "wrong").status_code == 429  # the failure that reaches the limit locks
    assert len(hashed) == LIMIT
    response = login(client, "lena", "pw-lena", address="198.51.100.1")  # the right password, from elsewhere
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    assert len(hashed) == LIMIT  # refused before hashing
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_whatever_the_usernames(make_user, client, hashed):
    make_user("someone")
    for n in range(LIMIT):
        login(client, f"guess{n}", "wrong")
    assert login(client, "someone", "pw-someone").status_code == 429
    # Another address still logs in.
    response = login(client, "someone", "pw-someone", address="198.51.100.2")
    assert response.status_code == 302


def test_the_lock_lifts_after_the_cooloff(lead, client):
    for _ in range(LIMIT):
        login(client, "lena", "wrong")
    assert login(client, "lena", "pw-lena").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert login(client, "lena", "pw-lena").status_code == 302


def test_the_admin_login_counts_too(lead, client):
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "lena", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    assert login(client, "lena", "pw-lena", address="203.0.113.9").status_code == 429


def test_the_token_endpoint_gives_an_expiring_token_and_locks_out(lead, hashed):
    api = APIClient(REMOTE_ADDR="203.0.113.8")
    response = api.post("/api/v1/auth/token/", {"username": "lena", "password": "pw-lena"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token"].startswith("fl_") and body["token"].startswith(body["token_prefix"])
    token = AuthToken.objects.get(token_key=body["token_prefix"])
    assert timedelta(days=89) < token.expiry - timezone.now() <= timedelta(days=90)

    authed = APIClient()
    authed.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert authed.get("/api/v1/projects/").status_code == 200
    assert authed.delete("/api/v1/auth/token/current/").status_code == 204
    assert authed.get("/api/v1/projects/").status_code == 401

    for n in range(LIMIT):
        wrong = api.post("/api/v1/auth/token/", {"username": "lena", "password": "no"}, format="json")
        assert wrong.status_code == (401 if n < LIMIT - 1 else 429)
    checked = len(hashed)
    locked = api.post("/api/v1/auth/token/", {"username": "lena", "password": "pw-lena"}, format="json")
    assert locked.status_code == 429 and "Too many failed logins" in locked.json()["detail"]
    assert len(hashed) == checked


def test_an_expired_token_is_refused(lead):
    token, raw = AuthToken.objects.create(user=lead, expiry=timedelta(days=1))
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.get("/api/v1/projects/").status_code == 401


def test_create_api_token_shows_the_expiry(lead, capsys):
    call_command("create_api_token", "lena", "--days", "7")
    assert "expires" in capsys.readouterr().err
    call_command("create_api_token", "lena", "--list")
    assert "expires" in capsys.readouterr().out


def test_behind_a_proxy_the_forwarded_address_counts_and_a_forged_one_does_not(lead, make_user, client, settings):
    make_user("other")
    # Without a trusted proxy, X-Forwarded-For is the client's to forge: it changes nothing.
    for n in range(LIMIT):
        login(client, f"guess{n}", "wrong", address="10.0.0.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert login(client, "other", "pw-other", address="10.0.0.5", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429

    # Behind one proxy (nginx at 10.0.0.6), clients are told apart by the address the proxy saw.
    settings.FINELINE_PROXY_COUNT = 1
    for n in range(LIMIT):
        login(client, f"guess{n}x", "wrong", address="10.0.0.6", HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.50")
    assert login(client, "other", "pw-other", address="10.0.0.6", HTTP_X_FORWARDED_FOR="192.0.2.50").status_code == 429
    assert login(client, "other", "pw-other", address="10.0.0.6", HTTP_X_FORWARDED_FOR="192.0.2.51").status_code == 302
