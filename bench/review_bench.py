"""Review speed at scale, side by side with a trivial view in the same run.

With 1,000,000 examples in one project (PostgreSQL), an expert works through the queue: "give me the next example"
(GET the review page) then "submit this review" (POST approve, which also claims and renders the next one). The
time of each round is measured over loopback against a gunicorn worker (middleware, session, auth, queries,
templates), against /healthz/ (one query, a JSON answer) in the same run. Prints p50/p95 and the ratio, then every
statement of one round with its plan (EXPLAIN (ANALYZE, BUFFERS), writes rolled back). Goal: p95 under 20 ms and
under 6x the trivial view.

Run: `.venv/bin/python bench/review_bench.py [--examples N] [--rounds N] [--keep]`. Uses its own database,
`fineline_bench_review`, created afresh; `--keep` reuses the one a run before loaded (the load takes minutes).
"""

import argparse
import html
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "fineline_bench_review"


def request(port, method, path, *, cookie="", htmx=False, form=None, csrf=""):
    """One request over loopback, timed by the caller: the server's whole answer, as a browser would wait for it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": "127.0.0.1", "Cookie": cookie}
    if htmx:
        headers["HX-Request"] = "true"
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers.update(
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-CSRFToken": csrf,
                "Referer": f"http://127.0.0.1:{port}/",
            }
        )
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    headers = dict(response.getheaders())
    headers["Set-Cookie"] = "; ".join(response.msg.get_all("Set-Cookie") or [])
    return response.status, headers, text


def approval(page: str) -> tuple[str, dict]:
    """The example the review panel shows and the form that approves it as it is (label P2)."""
    example_id = re.search(r'data-example="(\d+)"', page).group(1)
    form = dict(re.findall(r'name="(version|role_\d+)" value="([^"]*)"', page))
    contents = re.findall(r'<textarea name="content_(\d+)"[^>]*>(.*?)</textarea>', page, re.S)
    form.update({f"content_{i}": html.unescape(text) for i, text in contents})
    form.update({"decision": "approved", "label": "P2"})
    return example_id, form


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--browse", type=int, default=60, help="requests per kind of example-list page")
    parser.add_argument("--keep", action="store_true", help="reuse the database a run before loaded")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from import_bench import django_on_fresh_database

    django_on_fresh_database(DB_NAME, keep=args.keep, DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1")
    from django.contrib.auth import get_user_model
    from django.test import Client
    from import_bench import free_port, wait_for  # the same server helpers

    from curation.models import Example, Project

    users = get_user_model().objects
    project = Project.objects.filter(slug="bench").first()
    if project is not None and Example.objects.filter(project=project, status="pending").count() > args.rounds + 20:
        lead, expert = users.get(username="lead"), users.get(username="expert")
        print(f"reusing {Example.objects.filter(project=project).count():,} examples", flush=True)
    else:
        lead, expert, project = load(args.examples)

    client = Client()
    client.force_login(expert)  # a real session row; the server below reads it like any other
    session = client.cookies["sessionid"].value
    lead_client = Client()  # its own session: logging in on the same client would end the expert's
    lead_client.force_login(lead)
    lead_session = lead_client.cookies["sessionid"].value
    port = free_port()
    server = subprocess.Popen(  # as deployed (deploy/gunicorn.conf.py), with one worker
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi:application",
         "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"},
    )  # fmt: skip
    try:
        wait_for(port)
        status, headers, body = request(port, "GET", f"/projects/{project.slug}/review/", cookie=f"sessionid={session}")
        found = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", ""))
        assert found, (status, headers, body[:300])
        csrf = found.group(1)
        cookie = f"sessionid={session}; csrftoken={csrf}"
        rounds, trivial = [], []
        for number in range(args.rounds + 20):
            start = time.perf_counter()
            status, _, page = request(port, "GET", f"/projects/{project.slug}/review/", cookie=cookie, htmx=True)
            middle = time.perf_counter()
            example_id, form = approval(page)
            resume = time.perf_counter()
            posted, _, _ = request(
                port,
                "POST",
                f"/projects/{project.slug}/examples/{example_id}/submit/",
                cookie=cookie,
                htmx=True,
                form=form,
                csrf=csrf,
            )
            end = time.perf_counter()
            assert status == 200 and posted == 200, (status, posted)
            t0 = time.perf_counter()
            assert request(port, "GET", "/healthz/")[0] == 200
            t1 = time.perf_counter()
            if number >= 20:  # warm-up rounds are not counted
                rounds.append((middle - start + end - resume) * 1000)
                trivial.append((t1 - t0) * 1000)
        browse = browse_pages(port, project, f"sessionid={lead_session}", args.browse)
    finally:
        server.terminate()
        server.wait(timeout=30)
    reviewed = Example.objects.filter(project=project, status="approved").count()
    assert reviewed >= args.rounds, reviewed
    p95, trivial_p95 = percentile(rounds, 0.95), percentile(trivial, 0.95)
    print(
        f"next + submit, {args.rounds} rounds: p50 {statistics.median(rounds):.1f} ms, p95 {p95:.1f} ms (goal < 20 ms)"
    )
    print(f"trivial view (/healthz/): p50 {statistics.median(trivial):.2f} ms, p95 {trivial_p95:.2f} ms")
    print(f"ratio p95 / trivial p95: {p95 / trivial_p95:.1f}x (goal < 6x)")
    for name, times in browse.items():
        print(f"example list, {name}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms "
              "(goal < 50 ms)")  # fmt: skip
    explain_round(project, expert)


def load(examples: int):
    """A project of `examples` generated tickets (the import benchmark's), indexed for search, with a lead and an
    expert: (lead, expert, project)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from import_bench import generate  # the same tickets

    from curation import formats, services
    from curation.models import Example

    users = get_user_model().objects
    lead, expert = users.create_user("lead"), users.create_user("expert")
    project = services.project_create(
        creator=lead,
        name="Bench",
        slug="bench",
        labels=["P1", "P2", "P3", "P4"],
        output_format={"kind": "regex", "pattern": r"SEVERITY: P[1-4]\n(?s:.*)"},
    )
    services.membership_set(project=project, user=expert, role="expert")
    path = ROOT / "bench" / "out"
    path.mkdir(parents=True, exist_ok=True)
    source = path / "review.jsonl"
    print(f"loading {examples:,} examples ...", flush=True)
    generate(source, examples, seed=42)
    with source.open("rb") as handle:
        records = formats.read_jsonl(
            handle, fmt="auto", labels=project.labels, limits=services.import_limits(), max_body_bytes=1 << 40
        )
        services.import_examples(project=project, user=lead, records=records)
    services.example_search_index(project_id=project.pk, imported=examples)  # as the import's task does
    with connection.cursor() as cursor:
        # What autovacuum does within minutes of a big import and its indexing: dead index entries of the rows the
        # indexing rewrote go, hint bits are set, statistics are fresh. Without it the first reads write the table.
        cursor.execute("VACUUM (ANALYZE) curation_example")
        cursor.execute("ANALYZE")
    print(f"  {Example.objects.filter(project=project).count():,} examples", flush=True)
    return lead, expert, project


def browse_pages(port: int, project, cookie: str, count: int) -> dict[str, list[float]]:
    """The lead's example list (whose page also counts what a bulk action would take): the first page, a label and
    status filter, a word search, and the last page (keyset: after the id before the last page)."""
    from curation import demo
    from curation.models import Example
    from curation.views.examples import PAGE_SIZE

    last = Example.objects.filter(project=project).order_by("-id").values_list("id", flat=True)[PAGE_SIZE]
    word = demo.REGIONS[2]  # APAC, a region some tickets name
    pages = {"first page": "", "label + status": "?label=P3&status=pending", f"word search ({word})": f"?q={word}",
             "last page": f"?after={last}"}  # fmt: skip
    times: dict[str, list[float]] = {}
    for name, query in pages.items():
        times[name] = []
        for number in range(count + 5):
            start = time.perf_counter()
            status, _, _ = request(port, "GET", f"/projects/{project.slug}/examples/{query}", cookie=cookie)
            assert status == 200, (name, status)
            if number >= 5:
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def explain_round(project, expert) -> None:
    """Every statement of one round (next, then submit), as sent, with its plan; the writes are rolled back."""
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(expert)
    headers = {"HX-Request": "true"}
    with CaptureQueriesContext(connection) as captured:
        example_id, form = approval(client.get(f"/projects/{project.slug}/review/", headers=headers).content.decode())
        client.post(f"/projects/{project.slug}/examples/{example_id}/submit/", form, headers=headers)
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].strip().upper().startswith(control)]
    print(f"\none round (next + submit): {len(statements)} statements")
    for number, sql in enumerate(statements, 1):
        if sql.lstrip().upper().startswith("SET "):  # a setting of the transaction: nothing to plan
            setting, _, sql = sql.partition(";")  # a claim alone comes after its setting, in the same string
            print(f"{number:2}. {' '.join(setting.split())}")
            if not sql.strip():
                continue
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        took = next((line for line in plan if line.startswith("Execution Time")), "")
        print(f"{number:2}. {' '.join(sql.split())[:110]}")
        print(f"    {took}; {plan[0].strip()[:110]}")
        for line in plan[1:]:
            if "Scan" in line or "Index" in line:
                print(f"      {line.strip()[:110]}")


if __name__ == "__main__":
    main()
