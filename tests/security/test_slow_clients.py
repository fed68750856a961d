"""Slow clients and chunked bodies against the deployment itself: gunicorn started as docker-compose starts it
(deploy/gunicorn.conf.py: 3 sync workers, production settings) behind nginx run from the deployment's template
(deploy/nginx/default.conf.template), on the test database.

A sync worker reads its request straight off the socket, so ten clients that send their headers slowly hold all the
workers and the site stops answering; behind nginx they cost nothing and `/healthz/` answers at once."""

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from knox.models import AuthToken

from curation.models import Example, ImportJob

from ..helpers import chat, jsonl, service_env, start_gunicorn, start_nginx

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SLOW_SOCKETS = 10
# Small, so that the over-limit bodies are quick to send; the same value reaches gunicorn and nginx.
BODY_LIMIT = 256 * 1024
SECRET_KEY = "slow-clients-test-key-0123456789-0123456789-0123456789-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    """(nginx port, gunicorn port) for the module: one gunicorn, one nginx in front of it."""
    folder = tmp_path_factory.mktemp("stack")
    env = service_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_SECURE_SSL_REDIRECT="false",
        FINELINE_VAR_DIR=folder / "var",
        FINELINE_IMPORT_MAX_BODY_BYTES=BODY_LIMIT,
    )
    web_port, proxy_port = free_port(), free_port()
    web = start_gunicorn(env, web_port, workers=3)
    proxy = start_nginx(
        folder / "nginx",
        listen=proxy_port,
        upstream=f"127.0.0.1:{web_port}",
        FINELINE_IMPORT_MAX_BODY_BYTES=str(BODY_LIMIT),
    )
    try:
        wait_for(web_port)
        wait_for(proxy_port)
        # Every worker up and on the database before anything is timed.
        with ThreadPoolExecutor(6) as pool:
            warm = list(pool.map(lambda _: healthz(proxy_port, timeout=30)[0], range(12)))
        assert warm == [200] * 12
        yield proxy_port, web_port, folder
    finally:
        for process in (proxy, web):
            process.terminate()
            process.wait(timeout=30)


def healthz(port: int, timeout: float) -> tuple[int, float]:
    """(status, seconds) of GET /healthz/; status 0 when no answer came within `timeout`."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz/", headers={"Host": "127.0.0.1"})
        status = connection.getresponse().status
    except TimeoutError:
        status = 0
    finally:
        connection.close()
    return status, time.monotonic() - started


def open_slow_sockets(port: int) -> list[socket.socket]:
    """Ten requests whose headers never end (slowloris): each sends a first line and one header."""
    sockets = []
    for number in range(SLOW_SOCKETS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"GET /healthz/?slow={number} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        sockets.append(sock)
    return sockets


def post(port: int, path: str, body, headers: dict, chunked: bool) -> tuple[int, dict | str]:
    """POST `body` (bytes, or an iterable of byte chunks sent with Transfer-Encoding: chunked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        try:
            connection.request(
                "POST", path, body=body, headers={"Host": "127.0.0.1", **headers}, encode_chunked=chunked
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # a refusal before the whole body was read (413): the answer is still there to read
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    is_json = response.getheader("Content-Type", "").startswith("application/json")
    return response.status, json.loads(text) if is_json else text


def chunks(body: bytes, size: int = 8192):
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
def importer(project, lead):
    token = AuthToken.objects.create(user=lead)[1]
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/x-ndjson"}
    return f"/api/v1/projects/{project.slug}/imports/", headers


def test_slow_headers_do_not_stall_the_site_behind_nginx(stack):
    proxy_port, _, _ = stack
    slow = open_slow_sockets(proxy_port)
    try:
        answers = []
        for round_ in range(6):
            time.sleep(0.3)
            for sock in slow:  # one more header line each: the attack goes on for the whole measurement
                sock.sendall(f"X-Slow-{round_}: still coming\r\n".encode())
            answers.append(healthz(proxy_port, timeout=1))
    finally:
        for sock in slow:
            sock.close()
    print(f"\n/healthz/ through nginx with {SLOW_SOCKETS} slow sockets open: {[f'{s:.3f}s' for _, s in answers]}")
    assert [status for status, _ in answers] == [200] * 6
    assert max(seconds for _, seconds in answers) < 1


def test_slow_headers_stall_gunicorn_without_the_proxy(stack):
    """Why nginx is there: the same attack straight at gunicorn holds its three workers."""
    _, web_port, _ = stack
    assert healthz(web_port, timeout=5)[0] == 200
    slow = open_slow_sockets(web_port)
    try:
        time.sleep(0.3)  # the workers accept the slow sockets and wait for the rest of their headers
        stalled = healthz(web_port, timeout=2)
    finally:
        for sock in slow:
            sock.close()
    # Closed, the slow sockets free the workers at once.
    recovered = healthz(web_port, timeout=5)
    print(f"\n/healthz/ straight at gunicorn with {SLOW_SOCKETS} slow sockets open: {stalled}; closed: {recovered}")
    assert stalled[0] == 0, "gunicorn answered: the stall this proxy guards against did not happen"
    assert recovered[0] == 200


def test_a_chunked_import_straight_to_gunicorn_reads_every_line(stack, importer):
    _, web_port, _ = stack
    path, headers = importer
    body = jsonl([chat(f"ticket {number}") for number in range(300)])
    assert len(body) < BODY_LIMIT

    status, report = post(web_port, path, chunks(body), headers, chunked=True)

    assert status == 201, report
    assert (report["status"], report["total_lines"], report["created"]) == ("succeeded", 300, 300)
    assert Example.objects.count() == 300


@pytest.mark.parametrize("mode", ["atomic", "partial"])
def test_an_empty_chunked_import_is_a_400(stack, importer, mode):
    _, web_port, _ = stack
    path, headers = importer

    status, report = post(web_port, f"{path}?mode={mode}", iter(()), headers, chunked=True)

    assert (status, report["code"]) == (400, "empty_body")
    assert "body is empty" in report["detail"]
    assert not ImportJob.objects.exists()


def test_a_chunked_body_over_the_limit_is_a_413_straight_to_gunicorn(stack, importer):
    _, web_port, _ = stack
    path, headers = importer
    body = jsonl([chat(f"ticket {number}") for number in range(2000)])
    assert len(body) > BODY_LIMIT

    status, report = post(web_port, path, chunks(body), headers, chunked=True)

    assert (status, report["code"]) == (413, "body_too_large")
    assert f"over the limit of {BODY_LIMIT} bytes" in report["detail"]
    assert not Example.objects.exists()


def test_a_chunked_import_through_nginx_reads_every_line(stack, importer):
    proxy_port, _, _ = stack
    path, headers = importer
    body = jsonl([chat(f"ticket {number}") for number in range(300)])

    status, report = post(proxy_port, path, chunks(body), headers, chunked=True)

    assert status == 201, report
    assert (report["status"], report["total_lines"], report["created"]) == ("succeeded", 300, 300)
    # nginx refuses a body over the app's limit itself, before a worker reads any of it.
    big = jsonl([chat(f"ticket {number}") for number in range(2000)])
    assert post(proxy_port, path, chunks(big), headers, chunked=True)[0] == 413
    assert post(proxy_port, path, big, headers, chunked=False)[0] == 413
    assert Example.objects.count() == 300


def test_only_a_trusted_terminator_is_believed_about_https(stack, project):
    """Django believes X-Forwarded-Proto from whoever reaches gunicorn (SECURE_PROXY_SSL_HEADER), so gunicorn is on
    the compose network only and nginx always sets the header: a client's own "https" is replaced by the scheme it
    spoke, while a TLS terminator named in FINELINE_TRUSTED_PROXY is believed. HSTS is only sent over HTTPS, so it
    shows which scheme Django saw."""
    proxy_port, web_port, folder = stack

    def hsts(port: int) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz/", headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200
        return response.getheader("Strict-Transport-Security") is not None

    trusting_port = free_port()
    trusting = start_nginx(
        folder / "nginx-trusting",
        listen=trusting_port,
        upstream=f"127.0.0.1:{web_port}",
        FINELINE_TRUSTED_PROXY="127.0.0.1",
    )
    try:
        wait_for(trusting_port)
        seen = {"gunicorn itself": hsts(web_port), "nginx": hsts(proxy_port), "nginx, trusted": hsts(trusting_port)}
    finally:
        trusting.terminate()
        trusting.wait(timeout=30)
    assert seen == {"gunicorn itself": True, "nginx": False, "nginx, trusted": True}
