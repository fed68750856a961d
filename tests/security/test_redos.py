"""A project's patterns and schemas cannot hang the site (issue 12, High 2, and the `{"$ref": "#"}` Low).

Format regexes and JSON-schema patterns run on RE2; schemas are checked when saved and applied under a time budget;
the live check is bounded in length; every Celery task has soft and hard time limits. The hostile answer is 30
characters: about 2^30 steps for a backtracking engine, where the old code took 3 s at 22 characters and doubled
with each one more.
"""

import http.server
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import orjson
import pytest
from django.conf import settings
from django.test import Client

from curation import formats, services
from curation.models import Example, QualityScan

from ..helpers import ROOT, chat, jsonl, post_jsonl, service_env, start_worker, stop_worker

sys.path.insert(0, str(ROOT / "bench"))

HOSTILE_REGEX = "(a|a)+$"
HOSTILE_SCHEMA = {"type": "string", "pattern": "^(a|a)+$"}
ANSWER = "a" * 30 + "b"
KEY = "a" * 25 + "b"  # matched by jsonschema: 36-88 s at 28 characters on the stock validators, 1/8 of that here


def hostile_example(project, lead_api, answer: str = ANSWER) -> Example:
    assert post_jsonl(lead_api, project.slug, jsonl([chat("a ticket", answer=answer)])).status_code == 201
    return Example.objects.filter(project=project).latest("id")


def check(client: Client, project, example, answer: str):
    path = f"/projects/{project.slug}/examples/{example.pk}/check/"
    return client.post(path, {"field": "content_2", "content_2": answer}, HTTP_HX_REQUEST="true")


def test_the_hostile_answer_hangs_a_backtracking_engine():
    """What the old code did with the pattern: Python's `re` on 26 of the 30 characters is still going after 3 s."""
    code = f"import re; re.fullmatch({HOSTILE_REGEX!r}, {'a' * 26 + 'b'!r})"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=3)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "output_format, answer",
    [
        ({"kind": "regex", "pattern": HOSTILE_REGEX}, ANSWER),
        ({"kind": "json_schema", "schema": HOSTILE_SCHEMA}, json.dumps(ANSWER)),
    ],
    ids=["regex", "json_schema"],
)
def test_a_hostile_format_is_checked_at_once(project, lead_api, expert, output_format, answer):
    services.project_update(project=project, output_format=output_format)  # RE2 compiles it: nothing to refuse
    example = hostile_example(project, lead_api, answer)
    client = Client()
    client.force_login(expert)
    started = time.monotonic()
    response = check(client, project, example, answer)
    page = client.get(f"/projects/{project.slug}/examples/{example.pk}/review/", HTTP_HX_REQUEST="true")
    long_answer = check(client, project, example, answer[:1] * 60_000 + answer[-1:])  # linear: no slower for its size
    elapsed = time.monotonic() - started
    assert response.status_code == page.status_code == long_answer.status_code == 200
    assert 'data-format="bad"' in response.text and 'data-format="bad"' in long_answer.text
    assert elapsed < 1, f"three checks of a hostile answer took {elapsed:.2f} s"


# Every place jsonschema matches a schema's pattern or compares values, each with an answer that takes seconds (or
# exponential time) on the stock validators.
BOUNDED_SCHEMAS = {
    "pattern": ({"pattern": "^(a|a)+$"}, KEY, False),
    "patternProperties": ({"patternProperties": {"^(a|a)+$": {"type": "integer"}}}, {KEY: "x"}, True),
    "additionalProperties": ({"patternProperties": {"^(a|a)+$": {}}, "additionalProperties": False}, {KEY: 1}, False),
    "unevaluatedProperties": ({"patternProperties": {"^(a|a)+$": {}}, "unevaluatedProperties": False}, {KEY: 1}, False),
    "unevaluatedProperties 2019-09": (
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "patternProperties": {"^(a|a)+$": {}},
            "unevaluatedProperties": False,
        },
        {KEY: 1},
        False,
    ),
    "draft-04": (
        {"$schema": "http://json-schema.org/draft-04/schema#", "patternProperties": {"^(a|a)+$": {}}},
        {KEY: 1, "b": 2},
        True,
    ),
    "propertyNames": ({"propertyNames": {"pattern": "^(a|a)+$"}}, {KEY: 1}, False),
    # A `$ref` to the root: jsonschema picks the validator class of each schema it enters from its `$schema`.
    "recursion through the root": (
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"child": {"$ref": "#"}},
            "pattern": "^(a|a)+$",
        },
        {"child": KEY},
        False,
    ),
    "uniqueItems": ({"uniqueItems": True}, [{"n": n} for n in range(5_500)], True),  # 60 KB: 40 s pairwise
}


@pytest.mark.parametrize("schema, answer, fits", BOUNDED_SCHEMAS.values(), ids=BOUNDED_SCHEMAS.keys())
def test_every_pattern_and_comparison_in_a_schema_is_bounded(schema, answer, fits):
    spec = services.output_format_clean({"kind": "json_schema", "schema": schema})
    text = orjson.dumps(answer).decode()
    started = time.monotonic()
    violations = formats.answer_violations(spec, text)
    checked = formats.answer_checker(spec)(text)
    elapsed = time.monotonic() - started
    assert checked is fits and bool(violations) is not fits, violations
    assert elapsed < 1, f"{elapsed:.2f} s"


def test_every_function_of_jsonschema_that_uses_re_is_replaced():
    """The ones curation.patterns rebuilds over RE2: an upgrade of jsonschema that matches somewhere else fails here."""
    import types

    from jsonschema import _format, _keywords, _legacy_keywords, _utils

    def uses_re(code: types.CodeType) -> bool:
        inner = (const for const in code.co_consts if isinstance(const, types.CodeType))
        return "re" in code.co_names or any(uses_re(const) for const in inner)

    found = {
        f"{module.__name__}.{name}"
        for module in (_keywords, _legacy_keywords, _utils)
        for name, function in vars(module).items()
        if isinstance(function, types.FunctionType) and function.__module__ == module.__name__
        and uses_re(function.__code__)
    }  # fmt: skip
    assert found == {
        "jsonschema._keywords.pattern",
        "jsonschema._keywords.patternProperties",
        "jsonschema._utils.find_additional_properties",
        "jsonschema._utils.find_evaluated_property_keys_by_schema",
        "jsonschema._legacy_keywords.find_evaluated_property_keys_by_schema",
    }
    # The format "regex" compiles with `re`: answers are validated without a format checker (formats are only
    # annotations, as before), and schemas against their meta-schema with one that compiles in RE2.
    assert uses_re(_format.is_regex.__code__)
    assert formats.answer_checker({"kind": "json_schema", "schema": {"format": "regex"}})('"("') is True


def test_a_schema_that_fans_out_is_refused_and_an_old_one_is_cut_short():
    """Each definition applies the previous one twice: 2^40 applications on a non-string answer."""
    schema = {"$defs": {"d0": {"type": "string"}}, "$ref": "#/$defs/d40"}
    for n in range(1, 41):
        schema["$defs"][f"d{n}"] = {"anyOf": [{"$ref": f"#/$defs/d{n - 1}"}, {"$ref": f"#/$defs/d{n - 1}"}]}
    with pytest.raises(services.ServiceError, match="longer than 1 s"):
        services.output_format_clean({"kind": "json_schema", "schema": schema})


# --- Refused when saved ----------------------------------------------------------------------------------------

REFUSED = {
    "backreference": ({"kind": "regex", "pattern": r"(\w+) \1"}, "backreferences"),
    "lookahead": ({"kind": "regex", "pattern": r"SEVERITY: (?=P)P[1-4]"}, "lookarounds"),
    "lookbehind": ({"kind": "regex", "pattern": r"(?<!x)P[1-4]"}, "lookarounds"),
    "too long": ({"kind": "regex", "pattern": "a" * 4001}, "the limit is 4,000"),
    "schema backreference": ({"kind": "json_schema", "schema": {"pattern": r"(a)\1"}}, "RE2 cannot compile"),
    "schema lookahead key": (
        {"kind": "json_schema", "schema": {"patternProperties": {"^(?=x)": {}}}},
        "RE2 cannot compile",
    ),
    "$ref to itself": ({"kind": "json_schema", "schema": {"$ref": "#"}}, "without end"),
    "$ref loop through allOf": (
        {
            "kind": "json_schema",
            "schema": {
                "$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}},
                "$ref": "#/$defs/a",
            },
        },
        "without end",
    ),
    "remote $ref": ({"kind": "json_schema", "schema": {"$ref": "http://169.254.169.254/latest"}}, "inside the schema"),
    "file $ref": ({"kind": "json_schema", "schema": {"$ref": "file:///etc/hostname"}}, "inside the schema"),
    "$schema below the root": (
        {"kind": "json_schema", "schema": {"items": {"$schema": "http://json-schema.org/draft-07/schema#"}}},
        "only the root",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("output_format, why", REFUSED.values(), ids=REFUSED.keys())
def test_a_pattern_or_schema_re2_cannot_run_is_refused_when_saved(project, lead_api, output_format, why, settings):
    settings.FINELINE_PROJECT_CREATORS = "any"
    before = project.output_format
    response = lead_api.patch(f"/api/v1/projects/{project.slug}/", {"output_format": output_format}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "output_format" and why in response.json()["detail"], response.json()
    created = lead_api.post(
        "/api/v1/projects/", {"name": "x", "slug": "x", "output_format": output_format}, format="json"
    )
    assert created.status_code == 400 and why in created.json()["detail"]
    project.refresh_from_db()
    assert project.output_format == before


@pytest.mark.django_db
def test_recursion_into_a_part_of_the_answer_is_still_allowed(project, lead_api):
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    response = lead_api.patch(
        f"/api/v1/projects/{project.slug}/", {"output_format": {"kind": "json_schema", "schema": tree}}, format="json"
    )
    assert response.status_code == 200, response.json()
    (violation,) = formats.answer_violations(response.json()["output_format"], '{"children": [{"children": [1]}]}')
    assert violation.startswith("at $.children[0].children[0]: 1 is not of type 'object'")


@pytest.mark.django_db
def test_a_bad_format_saved_before_is_a_message_never_a_500(project, lead_api, expert):
    """`{"$ref": "#"}` used to pass the check and then fail the review page, the check, PATCH and the scan."""
    example = hostile_example(project, lead_api, '{"a": 1}')
    broken_formats = ({"kind": "json_schema", "schema": {"$ref": "#"}}, {"kind": "regex", "pattern": r"(a)\1"})
    for number, broken in enumerate(broken_formats, start=2):
        type(project).objects.filter(pk=project.pk).update(output_format=broken)  # as an older version let it be
        project.refresh_from_db()
        client = Client()
        client.force_login(expert)
        page = client.get(f"/projects/{project.slug}/examples/{example.pk}/review/", HTTP_HX_REQUEST="true")
        checked = check(client, project, example, '{"a": 1}')
        assert page.status_code == checked.status_code == 200
        assert "output format cannot be applied" in page.text and "output format cannot be applied" in checked.text
        example.refresh_from_db()
        messages = [*example.messages[:2], {"role": "assistant", "content": f'{{"a": {number}}}'}]
        patched = lead_api.patch(
            f"/api/v1/projects/{project.slug}/examples/{example.pk}/",
            {"version": example.version, "messages": messages},
            format="json",
        )
        assert patched.status_code == 200, patched.content
        example.refresh_from_db()
        assert example.format_ok is None  # could not be checked, and says nothing false
        scan = services.quality_scan_run(scan=QualityScan.objects.create(project=project, threshold=0.85))
        assert scan.status == QualityScan.Status.SUCCEEDED, scan.error


@pytest.mark.django_db
def test_a_remote_ref_saved_before_is_never_fetched(project, lead_api):
    """jsonschema's default registry fetches a `$ref` URL on the web host (http, https, file)."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"enum": ["secret"]}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = {"kind": "json_schema", "schema": {"$ref": f"http://127.0.0.1:{server.server_port}/internal"}}
        violations = formats.answer_violations(spec, '"x"')
    finally:
        server.shutdown()
    assert hits == [] and "does not resolve" in violations[0], violations


# --- The live check -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_live_check_stops_at_its_length_limit(project, lead_api, expert, settings):
    settings.FINELINE_LIVE_CHECK_MAX_CHARS = 1000
    example = hostile_example(project, lead_api, "SEVERITY: P1\nshort")
    client = Client()
    client.force_login(expert)
    response = check(client, project, example, "SEVERITY: P1\n" + "x" * 1000)
    assert response.status_code == 200  # htmx swaps it in: the reviewer sees why
    assert 'data-format="unchecked"' in response.text and "checked when you save" in response.text
    assert 'data-format="ok"' in check(client, project, example, "SEVERITY: P1\n" + "x" * 900).text


# --- A real web server and a real worker ------------------------------------------------------------------------


def request(port: int, method: str, path: str, *, body: bytes | None = None, headers=None, timeout: float = 5):
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_hostile_checks_in_parallel_leave_healthz_answering(project, lead_api, expert):
    """Three parallel checks held all three sync workers of production's gunicorn; /healthz/ took 36 s."""
    from import_bench import free_port, wait_for

    services.project_update(project=project, output_format={"kind": "regex", "pattern": HOSTILE_REGEX})
    example = hostile_example(project, lead_api)
    client = Client()
    client.force_login(expert)
    csrf = "c" * 32
    headers = {
        "Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
        "HX-Request": "true",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    port = free_port()
    env = service_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,  # the sessions this test logs in with
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="0",
    )
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "3", "--timeout", "600", "--log-level", "warning"]  # as docker-compose.yml runs it
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_for(port)
        path = f"/projects/{project.slug}/examples/{example.pk}/check/"
        body = urllib.parse.urlencode({"field": "content_2", "content_2": ANSWER}).encode()
        harmless = urllib.parse.urlencode({"field": "content_2", "content_2": "ab"}).encode()
        with ThreadPoolExecutor(3) as pool:  # every worker imports what a check needs before the clock starts
            warm = [
                pool.submit(request, port, "POST", path, body=harmless, headers=headers, timeout=60) for _ in range(6)
            ]
            assert [future.result()[0] for future in warm] == [200] * 6
        assert request(port, "GET", "/healthz/")[0] == 200
        running = threading.Event()
        running.set()

        durations = []

        def attack() -> list[int]:
            statuses = []
            while running.is_set() and len(statuses) < 50:
                started = time.monotonic()
                try:
                    statuses.append(request(port, "POST", path, body=body, headers=headers, timeout=20)[0])
                except TimeoutError:
                    statuses.append(None)
                durations.append(time.monotonic() - started)
                time.sleep(0.1)  # three parallel checks again and again, as an expert types; not a flood of requests
            return statuses

        healthz = []
        with ThreadPoolExecutor(3) as pool:
            attacks = [pool.submit(attack) for _ in range(3)]
            deadline = time.monotonic() + 3
            try:
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    status = request(port, "GET", "/healthz/", timeout=5)[0]
                    healthz.append((status, time.monotonic() - started))
                    time.sleep(0.1)
            except TimeoutError:
                healthz.append((None, 5.0))
            finally:
                running.clear()
            statuses = [status for attack in attacks for status in attack.result(timeout=120)]
        slowest = max(seconds for _, seconds in healthz)
        checks = sorted(durations)
        print(
            f"\n{len(checks)} hostile checks (median {checks[len(checks) // 2]:.3f} s, slowest "
            f"{checks[-1]:.3f} s); /healthz/ answered {len(healthz)} times, slowest {slowest:.3f} s"
        )
        assert all(status == 200 for status, _ in healthz) and slowest < 1, healthz
        assert statuses and set(statuses) == {200}
    finally:
        stop_server(server)


def stop_server(server: subprocess.Popen) -> None:
    """A worker stuck in a match never gets to its SIGTERM handler: the whole group is killed after a short wait."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    except ProcessLookupError:
        pass


def wait_for_scans(project_ids, seconds: float) -> list[QualityScan]:
    deadline = time.monotonic() + seconds
    while True:
        scans = list(QualityScan.objects.filter(project_id__in=project_ids).order_by("id"))
        if scans and all(scan.status in ("succeeded", "failed") for scan in scans) or time.monotonic() > deadline:
            return scans
        time.sleep(0.3)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_worker_scans_a_hostile_project_and_the_next_one(project, lead, lead_api):
    """The scan checks every answer with the same engine: it used to block the worker, and every project after it."""
    from config.celery import app

    services.project_update(project=project, output_format={"kind": "regex", "pattern": HOSTILE_REGEX})
    rows = [chat(f"ticket {n}", answer=ANSWER + "a" * n) for n in range(20)]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    other = services.project_create(creator=lead, name="Other", slug="other")
    assert post_jsonl(lead_api, other.slug, jsonl([chat("another ticket")])).status_code == 201
    QualityScan.objects.all().delete()
    app.control.purge()  # queued before: the scans of the imports above, and earlier tests' tasks
    services.quality_scan_start(project=project)
    services.quality_scan_start(project=other)
    worker = start_worker(service_env(), queues="default")
    try:
        scans = wait_for_scans([project.pk, other.pk], seconds=60)
    finally:
        output = stop_worker(worker)
    assert [scan.status for scan in scans] == ["succeeded", "succeeded"], (scans, output[-3000:])
    assert set(Example.objects.filter(project=project).values_list("format_ok", flat=True)) == {False}


# --- Time limits on every task ----------------------------------------------------------------------------------


def test_every_task_has_soft_and_hard_time_limits():
    from config.celery import app

    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"curation.quality_scan_run", "training.run", "evaluation.run"} <= set(ours)
    for name, task in ours.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and hard > soft, name
    assert app.conf.task_soft_time_limit == settings.FINELINE_TASK_SOFT_TIME_LIMIT
    assert ours["training.run"].soft_time_limit == settings.FINELINE_TRAINING_SOFT_TIME_LIMIT  # runs take hours
    assert ours["evaluation.run"].soft_time_limit == settings.FINELINE_EVALUATION_SOFT_TIME_LIMIT
    longest = max(task.time_limit or app.conf.task_time_limit for task in ours.values())
    if settings.REDIS_URL:  # Redis redelivers a job still running past its visibility timeout
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > longest


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_task_past_its_soft_time_limit_ends_failed_and_says_why(project, lead):
    """A prefork worker (as docker-compose runs it) and a scan of 10,000 examples (3-4 s here) under a 1 s limit.

    A task's limits travel in its message, from the settings of the process that sends it: here, this test. (A limit
    that expires before the task starts, in Celery's task_prerun signal, is lost: not one to set in seconds.)"""
    from config.celery import app
    from curation.tasks import quality_scan_run

    rows = [chat(f"ticket number {n} about the invoice export", label="P4") for n in range(10_000)]
    records = formats.read_jsonl(
        io.BytesIO(jsonl(rows)),
        fmt="auto",
        labels=project.labels,
        limits=services.import_limits(),
        max_body_bytes=1 << 30,
    )
    services.import_examples(project=project, user=lead, records=records)
    QualityScan.objects.all().delete()
    app.control.purge()
    scan = QualityScan.objects.create(project=project, threshold=0.85)
    quality_scan_run.apply_async(args=[scan.pk], soft_time_limit=1)
    env = service_env()
    worker = start_worker(env, queues="default", loglevel="INFO", pool="prefork", extra=["--concurrency", "1"])
    try:
        [scan] = wait_for_scans([project.pk], seconds=60)
    finally:
        output = stop_worker(worker)
    assert scan.status == QualityScan.Status.FAILED, (scan.status, output[-3000:])
    assert scan.error == (
        "TimeLimitReached: stopped at its time limit: it ran longer than 1 s (FINELINE_TASK_SOFT_TIME_LIMIT gives "
        "it longer)."
    )
    assert scan.finished_at is not None
