"""Bulk approval against one PATCH per example, side by side in one run, over HTTP to a gunicorn worker.

A lead approves imported examples: (1) one `PATCH /examples/<id>/` each, on a sample; (2) one
`POST /examples/bulk/ {"action": "approve", "filter": {"status": "pending"}}` for the other 10,000. Prints examples/s
for both and their ratio, and checks that every approved example has the lead's review and revision and that the
maintained counters agree with a count of the rows. Goal: 10,000 in under 10 s; at least 50x the PATCH rate.

Run: `.venv/bin/python bench/bulk_bench.py [--examples 10000] [--sample 300]`. Needs PostgreSQL (BENCH_PG; default
127.0.0.1:5432, user postgres) and uses its own database, `fineline_bench_bulk`, created afresh.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "fineline_bench_bulk"


def call(port: int, token: str, method: str, path: str, body: dict) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Host": "127.0.0.1"}
    connection.request(method, path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="Approved in one bulk request.")
    parser.add_argument("--sample", type=int, default=300, help="Approved one PATCH at a time.")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from import_bench import django_on_fresh_database

    django_on_fresh_database(DB_NAME, DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from import_bench import free_port, generate, wait_for
    from knox.models import AuthToken

    from curation import formats, selectors, services
    from curation.models import Example, Review, Revision

    lead = get_user_model().objects.create_user("lead")
    project = services.project_create(creator=lead, name="Bench", slug="bench", labels=["P1", "P2", "P3", "P4"])
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    source = out / "bulk.jsonl"
    total = args.examples + args.sample
    print(f"loading {total:,} examples ...", flush=True)
    generate(source, total, seed=7)
    with source.open("rb") as handle:
        records = formats.read_jsonl(
            handle, fmt="auto", labels=project.labels, limits=services.import_limits(), max_body_bytes=1 << 40
        )
        services.import_examples(project=project, user=lead, records=records)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    sample = list(Example.objects.filter(project=project).order_by("-id").values_list("id", "version")[: args.sample])
    token = AuthToken.objects.create(user=lead)[1]
    connection.close()  # the server below works on the database; this process only reads it afterwards

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--log-level", "warning", "--timeout", "600"],
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        wait_for(port)
        base = f"/api/v1/projects/{project.slug}/examples/"
        start = time.perf_counter()
        for example_id, version in sample:
            change = {"version": version, "status": "approved"}
            status, body = call(port, token, "PATCH", f"{base}{example_id}/", change)
            assert status == 200, (status, body)
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        approve = {"action": "approve", "filter": {"status": "pending"}}
        status, result = call(port, token, "POST", f"{base}bulk/", approve)
        in_bulk = time.perf_counter() - start
        assert status == 200, (status, result)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert result["changed"] == args.examples, result
    bulk_ids = Example.objects.filter(project=project, review_count=1)
    assert Review.objects.filter(reviewer=lead).count() == args.examples
    assert Revision.objects.filter(example__in=bulk_ids, kind="review", author=lead).count() == args.examples
    counted = selectors.project_status_counts(project=project)
    assert counted == {"approved": total}, counted

    patch_rate, bulk_rate = args.sample / one_by_one, args.examples / in_bulk
    print(f"one PATCH per example: {args.sample:,} in {one_by_one:.2f} s = {patch_rate:,.0f} examples/s")
    print(f"one bulk request:      {args.examples:,} in {in_bulk:.2f} s = {bulk_rate:,.0f} examples/s (goal < 10 s)")
    print(f"ratio bulk / PATCH: {bulk_rate / patch_rate:,.0f}x (goal >= 50x)")
    print(f"15,000 examples: {15_000 / patch_rate:,.0f} s one by one, {15_000 / bulk_rate:.1f} s in bulk (estimated)")
    print(f"answer: {result}")


if __name__ == "__main__":
    main()
