"""API tokens: created by a command, shown once, stored only as a hash, revocable at once."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def create_token(username: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", username, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_token_authenticates_and_is_stored_hashed(lead, project):
    raw = create_token("lena")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/projects/").status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key FROM knox_authtoken")
        stored = cursor.fetchall()
    assert len(stored) == 1
    digest, key = stored[0]
    assert raw not in digest and raw != key and len(key) < len(raw)


def test_revoked_token_gets_401_at_once(lead, project):
    raw = create_token("lena")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/projects/").status_code == 200
    prefix = AuthToken.objects.get().token_key
    call_command("create_api_token", "lena", "--revoke", prefix, stdout=io.StringIO())
    assert client.get("/api/v1/projects/").status_code == 401


def test_wrong_token_and_unknown_user(lead):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token fl_not-a-real-token")
    assert client.get("/api/v1/projects/").status_code == 401
    with pytest.raises(CommandError):
        create_token("nobody")
