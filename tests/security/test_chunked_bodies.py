"""Bodies sent with Transfer-Encoding: chunked (no Content-Length) reach the views whole, or are refused clearly
(config.middleware.ReadChunkedBodies); an import of an empty body is a 400. In-process, with the WSGI environ each
server builds: gunicorn de-chunks and says so (`wsgi.input_terminated`), runserver's wsgiref does not. The same
requests against a real gunicorn and nginx are in test_slow_clients.py."""

import http.client
import io
import json

import pytest
from django.test import override_settings
from django.test.client import encode_multipart
from knox.models import AuthToken

from curation.models import Example, ImportJob

from ..helpers import chat, jsonl

pytestmark = pytest.mark.django_db


def post_chunked(
    client, path: str, body: bytes, *, terminated=True, content_type="application/x-ndjson", method="POST"
):
    """A request as the WSGI server hands it over: no CONTENT_LENGTH, the de-chunked body in wsgi.input (gunicorn), or
    no `wsgi.input_terminated` (wsgiref, which would hand over the raw chunk framing)."""
    environ = {"wsgi.input": io.BytesIO(body), "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": content_type}
    # Both: DRF's client sets CONTENT_TYPE from `content_type`, Django's (with no data) only from the environ.
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.generic(method, path, "", content_type=content_type, **environ)


def imports(project) -> str:
    return f"/api/v1/projects/{project.slug}/imports/"


def test_a_chunked_import_reads_every_line(project, lead_api):
    response = post_chunked(lead_api, imports(project), jsonl([chat(f"ticket {n}") for n in range(50)]))
    assert response.status_code == 201, response.json()
    assert (response.json()["total_lines"], response.json()["created"]) == (50, 50)
    assert Example.objects.count() == 50


def test_a_chunked_multipart_upload_reads_the_file(project, lead_api):
    boundary = "fineline-boundary"
    body = encode_multipart(boundary, {"file": _named(jsonl([chat("a"), chat("b")]), "tickets.jsonl")})
    response = post_chunked(lead_api, imports(project), body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2


def test_a_chunked_body_is_411_where_the_server_cannot_de_chunk_it(project, lead_api, client):
    response = post_chunked(lead_api, imports(project), jsonl([chat("a")]), terminated=False)
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
    assert "Content-Length" in response.json()["detail"]
    page = post_chunked(client, "/accounts/login/", b"username=a&password=b", terminated=False)
    assert page.status_code == 411 and b"Content-Length" in page.content
    assert not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_runserver_answers_a_chunked_body_with_411(live_server, project, lead):
    """Django's own server (wsgiref, as runserver and `make run`), over a real socket: the body it could not read is
    refused, not imported as nothing."""
    token = AuthToken.objects.create(user=lead)[1]
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/x-ndjson"}
    body = iter([jsonl([chat("a")]), jsonl([chat("b")])])
    try:
        connection.request("POST", imports(project), body=body, headers=headers, encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered and closed before the rest of the body went out: the answer is there to read
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert (response.status, answer["code"]) == (411, "length_required")
    assert not ImportJob.objects.exists()


@override_settings(FINELINE_IMPORT_MAX_BODY_BYTES=10_000)
def test_a_chunked_body_over_the_limit_is_413(project, lead_api):
    body = jsonl([chat(f"ticket {n}") for n in range(100)])
    assert len(body) > 10_000
    response = post_chunked(lead_api, imports(project), body)
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is over the limit of 10000 bytes.", "code": "body_too_large"}
    assert not Example.objects.exists() and not ImportJob.objects.exists()


@override_settings(FINELINE_IMPORT_MAX_BODY_BYTES=10_000)
def test_a_chunked_body_at_the_limit_is_read(project, lead_api):
    body = jsonl([chat(f"ticket {n}") for n in range(100)])
    lines = body.splitlines(keepends=True)
    while len(body) > 10_000:
        lines.pop()
        body = b"".join(lines)
    response = post_chunked(lead_api, imports(project), body)
    assert response.status_code == 201
    assert response.json()["created"] == len(lines)


def test_a_chunked_json_body_reaches_the_rest_of_the_api(project, lead_api):
    """Not only imports: DRF reads a de-chunked body like any other (it used to see none, and changed nothing)."""
    body = b'{"name": "Renamed in chunks"}'
    response = post_chunked(
        lead_api, f"/api/v1/projects/{project.slug}/", body, content_type="application/json", method="PATCH"
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert project.name == "Renamed in chunks"


@pytest.mark.parametrize("mode", ["atomic", "partial"])
def test_an_import_of_an_empty_body_is_a_400(project, lead_api, mode):
    for response in (
        lead_api.generic(
            "POST", f"{imports(project)}?mode={mode}", "", content_type="application/x-ndjson", CONTENT_LENGTH="0"
        ),
        post_chunked(lead_api, f"{imports(project)}?mode={mode}", b""),
    ):
        assert response.status_code == 400
        assert response.json()["code"] == "empty_body"
        assert response.json()["detail"].startswith("The request body is empty")
    preview = post_chunked(lead_api, f"{imports(project)}preview/", b"")
    assert (preview.status_code, preview.json()["code"]) == (400, "empty_body")
    assert not ImportJob.objects.exists()


def test_an_import_of_an_empty_file_is_a_400(project, lead_api):
    response = lead_api.post(imports(project), {"file": _named(b"", "empty.jsonl")}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The uploaded file is empty: it holds no examples to import.",
        "code": "empty_body",
    }


def _named(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/x-ndjson")
