"""Many experts at once, during a big import: 20 simulated experts each do FINELINE_STRESS_ROUNDS (150) rounds of
next / edit / submit over HTTP against PostgreSQL while 50,000 examples are imported through the API, as a user
sends them: a body over FINELINE_IMPORT_SYNC_MAX_BYTES, answered 202 and imported by a Celery worker on the default
queue, its job polled every second until it ends. No edit is lost (every accepted submit is in the history), no
example is held or reviewed by two experts, no request fails; the p95 of the review requests from the upload to the
job's end is printed (goal < 150 ms during the import, issue 16). For a baseline measured on the same machine,
FINELINE_IMPORT_SYNC_MAX_BYTES=1000000000 imports the body within its request, as before (201)."""

import html
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count
from django.test import Client
from knox.models import AuthToken

from curation import formats, services
from curation.models import Example, Review, Revision

from ..helpers import service_env, start_gunicorn, start_nginx, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
EXPERTS = 20
ROUNDS = int(os.environ.get("FINELINE_STRESS_ROUNDS", 150))
# Seconds an expert reads before the next round (0 by default: 20 clients that never pause, a test of throughput as
# much as of latency). FINELINE_STRESS_THINK_MS=1000 paces them as the fastest keyboard reviewer could, about one
# example a second each (uniformly 0.5x to 1.5x, so they do not march in step): the latency an expert would feel.
THINK = int(os.environ.get("FINELINE_STRESS_THINK_MS", 0)) / 1000
IMPORTED = 50_000
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def http(port: int, method: str, path: str, *, cookie: str = "", form: dict | None = None, csrf: str = "",
         body: bytes | None = None, headers: dict | None = None):  # fmt: skip
    connection = HTTPConnection("127.0.0.1", port, timeout=120)
    sent = {"Cookie": cookie, "HX-Request": "true", **(headers or {})}
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        sent.update({"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrf})
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, response.msg.get_all("Set-Cookie") or [], text


@pytest.fixture
def server(db, tmp_path):
    """The web app as docker-compose runs it: nginx (from the deployment's template) in front of gunicorn (3 sync
    workers) on the test database, and a Celery worker on the default queue (solo pool) that imports what gunicorn
    queues (both see the same data folder). The experts and the import talk to nginx, which holds a request's whole
    body before a gunicorn worker sees it. FINELINE_STRESS_DIRECT=1 sends them to gunicorn itself."""
    from import_bench import free_port, wait_for

    port, proxy_port = free_port(), free_port()
    env = service_env(FINELINE_VAR_DIR=tmp_path / "var")
    process = start_gunicorn(env, port, workers=3)
    worker = start_worker(env, nice=int(os.environ.get("FINELINE_STRESS_WORKER_NICE", 0)))
    direct = os.environ.get("FINELINE_STRESS_DIRECT") == "1"
    proxy = None if direct else start_nginx(tmp_path / "nginx", listen=proxy_port, upstream=f"127.0.0.1:{port}")
    wait_for(port)
    if proxy is not None:
        wait_for(proxy_port)
    yield port if direct else proxy_port
    if proxy is not None:
        proxy.terminate()
        proxy.wait(timeout=30)
    process.terminate()
    process.wait(timeout=30)
    output = stop_worker(worker)
    assert "Traceback" not in output, output


def test_twenty_experts_review_while_fifty_thousand_examples_import(server, project, lead, make_user, tmp_path):
    from import_bench import generate  # the same generated tickets as the import benchmark

    port = server
    # The queue: enough pending examples for every round, loaded up front.
    queue_file, import_file = tmp_path / "queue.jsonl", tmp_path / "import.jsonl"
    generate(queue_file, EXPERTS * ROUNDS + 200, seed=1)
    generate(import_file, IMPORTED, seed=2)
    with queue_file.open("rb") as handle:
        records = formats.read_jsonl(
            handle, fmt="auto", labels=project.labels, limits=services.import_limits(), max_body_bytes=1 << 40
        )
        job = services.import_examples(project=project, user=lead, records=records)
    # What a worker does after every import (here without one): index, and refresh the planner's statistics. With
    # statistics from an almost empty table, PostgreSQL checks each edited answer's hash across the whole project.
    services.example_search_index(project_id=project.pk, imported=job.created_count)
    experts = []
    for number in range(EXPERTS):
        user = make_user(f"e{number}")
        services.membership_set(project=project, user=user, role="expert")
        client = Client()
        client.force_login(user)
        experts.append(client.cookies["sessionid"].value)
    token = AuthToken.objects.create(user=lead)[1]
    latencies, errors, accepted, refused = [], [], [], []
    lock = threading.Lock()
    started = threading.Event()

    window = {}

    def importer():
        started.wait()
        body = import_file.read_bytes()
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/x-ndjson"}
        window["start"] = time.perf_counter()
        status, _, text = http(
            port, "POST", f"/api/v1/projects/{project.slug}/imports/?mode=partial", body=body, headers=headers
        )
        window["answered"] = time.perf_counter()
        if status == 201 and len(body) <= settings.FINELINE_IMPORT_SYNC_MAX_BYTES:  # the baseline: imported already
            window["end"] = window["answered"]
            return
        if status != 202:
            with lock:
                errors.append(("import", status, text[:300]))
            window["end"] = time.perf_counter()
            return
        job = json.loads(text)
        while job["status"] in ("queued", "running"):
            time.sleep(1)  # as the upload page polls
            status, _, text = http(port, "GET", job["url"], headers=headers)
            job = json.loads(text) if status == 200 else job
        window["end"] = time.perf_counter()
        window["job"] = job
        with lock:
            if job["status"] != "partial" and job["status"] != "succeeded" or job["created"] != IMPORTED:
                errors.append(("import", job["status"], job["created"], job["error"], job["errors"][:3]))

    def expert(number: int, session: str):
        status, cookies, page = http(port, "GET", f"/projects/{project.slug}/review/", cookie=f"sessionid={session}")
        found = re.search(r"csrftoken=([^;]+)", "; ".join(cookies))
        if found is None:
            with lock:
                errors.append(("first page", number, status, page[:300]))
            started.set()
            return
        csrf = found.group(1)
        cookie = f"sessionid={session}; csrftoken={csrf}"
        started.set()
        for round_ in range(ROUNDS):
            begin = time.perf_counter()
            status, _, page = http(port, "GET", f"/projects/{project.slug}/review/", cookie=cookie)
            took = time.perf_counter() - begin
            found = re.search(r'data-example="(\d+)"', page)
            if status != 200 or not found:
                with lock:
                    errors.append(("next", number, round_, status, page[:200]))
                continue
            form = dict(re.findall(r'name="(version|role_\d+)" value="([^"]*)"', page))
            contents = re.findall(r'<textarea name="content_(\d+)"[^>]*>(.*?)</textarea>', page, re.S)
            form.update({f"content_{i}": html.unescape(text) for i, text in contents})
            marker = f"[checked by e{number} in round {round_}]"
            last = max(contents)[0]
            form[f"content_{last}"] += f"\n{marker}"
            form.update({"decision": "approved", "label": "P2"})
            begin = time.perf_counter()
            status, _, _ = http(
                port, "POST", f"/projects/{project.slug}/examples/{found.group(1)}/submit/", cookie=cookie, form=form,
                csrf=csrf,
            )  # fmt: skip
            with lock:
                latencies.extend([(begin - took, took), (begin, time.perf_counter() - begin)])
            if THINK:
                time.sleep(THINK * random.uniform(0.5, 1.5))
            with lock:
                if status == 200 or status == 204 or 300 <= status < 400:
                    accepted.append((int(found.group(1)), marker))
                elif status == 409:
                    refused.append((int(found.group(1)), marker))
                else:
                    errors.append(("submit", number, round_, status))

    threads = [threading.Thread(target=expert, args=(n, s)) for n, s in enumerate(experts)]
    threads.append(threading.Thread(target=importer))
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begin

    def p(values, share):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * share))] * 1000 if values else float("nan")

    during = [took for at, took in latencies if window.get("start", 0) <= at <= window.get("end", 0)]
    every = [took for _, took in latencies]
    # Split at the 202: while the body uploads (a web worker copies it to disk), then while the worker imports it.
    uploading = [took for at, took in latencies if window.get("start", 0) <= at <= window.get("answered", 0)]
    queued = [took for at, took in latencies if window.get("answered", 0) < at <= window.get("end", 0)]
    outside = [took for at, took in latencies if not window.get("start", 0) <= at <= window.get("end", 0)]
    print(
        f"\n{EXPERTS} experts x {ROUNDS} rounds, an import of {IMPORTED:,} meanwhile "
        f"({len(import_file.read_bytes()) / 1e6:.1f} MB answered {202 if 'job' in window else 201} in "
        f"{window.get('answered', 0) - window.get('start', 0):.2f} s, done "
        f"{window.get('end', 0) - window.get('start', 0):.0f} s after the upload): "
        f"{len(every):,} review requests in {elapsed:.0f} s; "
        f"during the import p50 {p(during, 0.5):.0f} ms, p95 {p(during, 0.95):.0f} ms ({len(during):,} requests: "
        f"p95 {p(uploading, 0.95):.0f} ms while it uploads, {p(queued, 0.95):.0f} ms after the 202); "
        f"outside it p95 {p(outside, 0.95):.0f} ms; overall p50 {p(every, 0.5):.0f} ms, p95 {p(every, 0.95):.0f} ms; "
        f"{len(accepted):,} submits accepted, "
        f"{len(refused)} refused (409), {len(errors)} errors"
    )
    assert errors == [], errors[:5]
    assert len(accepted) + len(refused) == EXPERTS * ROUNDS
    # Every accepted edit is in its example's history; a refused one is not.
    history = {}
    for example_id, messages in Revision.objects.filter(example__project=project).values_list("example_id", "messages"):
        history.setdefault(example_id, []).append(messages[-1]["content"])
    lost = [(pk, m) for pk, m in accepted if not any(m in text for text in history.get(pk, []))]
    assert lost == []
    assert not [(pk, m) for pk, m in refused if any(m in text for text in history.get(pk, []))]
    # No example was given to two experts: one review each, and as many reviewed examples as accepted submits.
    doubled = Review.objects.values("example").annotate(n=Count("id")).filter(n__gt=1)
    assert not doubled.exists()
    assert Review.objects.filter(example__project=project).count() == len(accepted)
    assert Example.objects.filter(project=project).count() == EXPERTS * ROUNDS + 200 + IMPORTED
