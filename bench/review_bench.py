"""Review speed at scale, side by side with a trivial view in the same run.

With 200,000 examples in one project (PostgreSQL), an expert works through the queue: "give me the next example"
(GET the review page) then "submit this review" (POST approve, which also claims and renders the next one). The
server time of each round is measured in-process (Django's test client: middleware, session, auth, queries,
templates; no network), against /healthz/ (one query, a JSON answer) in the same run. Prints p50/p95 and the
ratio. Goal: p95 under 50 ms and under 5x the trivial view.

Run: `.venv/bin/python bench/review_bench.py [--examples N] [--rounds N]`. Uses its own database,
`fineline_bench_review`, created afresh.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "fineline_bench_review"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{DB_NAME}",
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "testserver",
        }
    )
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from import_bench import generate  # the same generated tickets as the import bench

    from curation import formats, services
    from curation.models import Example

    call_command("migrate", verbosity=0)
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
    print(f"loading {args.examples:,} examples ...", flush=True)
    generate(source, args.examples, seed=42)
    with source.open("rb") as handle:
        records = formats.read_jsonl(
            handle, fmt="auto", labels=project.labels, limits=services.import_limits(), max_body_bytes=1 << 40
        )
        services.import_examples(project=project, user=lead, records=records)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  {Example.objects.filter(project=project).count():,} examples", flush=True)

    client = Client()
    client.force_login(expert)
    headers = {"HTTP_HX_REQUEST": "true"}
    next_url = f"/projects/{project.slug}/review/"
    rounds, trivial = [], []
    for number in range(args.rounds + 20):
        start = time.perf_counter()
        page = client.get(next_url, **headers)
        example = Example.objects.get(locked_by=expert, project=project)
        data = {"version": example.version, "decision": "approved", "label": "P2"}
        for index, message in enumerate(example.messages):
            data[f"role_{index}"], data[f"content_{index}"] = message["role"], message["content"]
        middle = time.perf_counter()
        submitted = client.post(f"/projects/{project.slug}/examples/{example.pk}/submit/", data, **headers)
        end = time.perf_counter()
        assert page.status_code == 200 and submitted.status_code == 200, (page.status_code, submitted.status_code)
        t0 = time.perf_counter()
        assert client.get("/healthz/").status_code == 200
        t1 = time.perf_counter()
        if number >= 20:  # warm-up rounds are not counted
            rounds.append((middle - start + end - middle) * 1000)
            trivial.append((t1 - t0) * 1000)
    p95, trivial_p95 = percentile(rounds, 0.95), percentile(trivial, 0.95)
    print(
        f"next + submit, {args.rounds} rounds: p50 {statistics.median(rounds):.1f} ms, p95 {p95:.1f} ms (goal < 50 ms)"
    )
    print(f"trivial view (/healthz/): p50 {statistics.median(trivial):.2f} ms, p95 {trivial_p95:.2f} ms")
    print(f"ratio p95 / trivial p95: {p95 / trivial_p95:.1f}x (goal < 5x)")


if __name__ == "__main__":
    main()
