"""Dataset statistics at scale, measured side by side in one run.

1. The dashboard's data and the readiness verdict (selectors.dashboard_stats + selectors.readiness, with the cached
   review counts dropped first) on a project of 5,000 and one of 500,000 examples in PostgreSQL (80% approved, a
   quality scan and a frozen version each; tickets as varied as real ones, 2% near-duplicate re-sends): median of 5
   runs, and the ratio. Goal: under 3x, and the 500,000 case
   under one second.
2. Near-duplicate detection (quality.duplicate_clusters, MinHash LSH at the default threshold) on 100,000 examples
   with 2,000 planted near duplicates: examples/s and recall. Goal: recall >= 0.95.

Run: `.venv/bin/python bench/stats_bench.py [--large N]`. Uses its own database, `fineline_bench_stats`.
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "fineline_bench_stats"


def diverse_tickets(path: Path, rows: int, seed: int) -> None:
    """Tickets as varied as real ones (a large vocabulary, 20-60 words), in the demo's answer format, with 2%
    near-duplicate re-sends: the share of clustered examples a real project has, not a template generator's."""
    import orjson

    from curation import demo

    rng = random.Random(seed)
    vocabulary = [f"{stem}{n}" for stem in ("err", "svc", "acct", "inv", "node", "user", "file") for n in range(800)]
    previous: list[str] = []
    weights = list(demo.WEIGHTS.values())
    with path.open("wb") as out:
        for number in range(rows):
            if previous and rng.random() < 0.02:
                ticket = rng.choice(previous) + " any update"
            else:
                ticket = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(20, 60)))
                if len(previous) < 1000:
                    previous.append(ticket)
            severity = rng.choices(list(demo.WEIGHTS), weights)[0]
            row = {
                "messages": [
                    {"role": "system", "content": demo.SYSTEM_PROMPT},
                    {"role": "user", "content": f"{ticket} (ticket {seed}-{number})"},
                    {"role": "assistant", "content": f"SEVERITY: {severity}\nIMPACT: case {number}\nACTION: triage"},
                ],
                "label": severity,
                "tags": ["edge_case"] if rng.random() < 0.06 else [],
            }
            out.write(orjson.dumps(row) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=500_000)
    parser.add_argument("--dedup", type=int, default=100_000)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from import_bench import django_on_fresh_database

    django_on_fresh_database(DB_NAME)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection

    from curation import demo, formats, quality, selectors, services

    lead = get_user_model().objects.create_user("lead")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)

    timings = {}
    for size in (args.small, args.large):
        project = services.project_create(
            creator=lead,
            name=f"Stats {size}",
            slug=f"stats-{size}",
            labels=demo.LABELS,
            output_format=demo.OUTPUT_FORMAT,
        )
        source = out / f"stats-{size}.jsonl"
        print(f"loading {size:,} examples ...", flush=True)
        diverse_tickets(source, size, seed=size)
        with source.open("rb") as handle:
            records = formats.read_jsonl(
                handle, fmt="auto", labels=project.labels, limits=services.import_limits(), max_body_bytes=1 << 40
            )
            services.import_examples(project=project, user=lead, records=records)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE curation_example SET status = 'approved' WHERE project_id = %s AND id %% 5 <> 0", [project.pk]
            )
            cursor.execute("VACUUM ANALYZE curation_example")
        start = time.perf_counter()
        scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
        print(f"  quality scan: {time.perf_counter() - start:.1f} s, {scan.clusters:,} clusters", flush=True)
        services.dataset_version_freeze(project=project, user=lead)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        runs = []
        for _ in range(6):
            cache.clear()
            start = time.perf_counter()
            selectors.dashboard_stats(project=project)
            verdict = selectors.readiness(project=project)
            runs.append(time.perf_counter() - start)
        timings[size] = statistics.median(runs[1:])
        print(f"  dashboard + readiness: median {timings[size] * 1000:.0f} ms (ready={verdict['ready']})", flush=True)
    ratio = timings[args.large] / timings[args.small]
    print(
        f"{args.large:,} vs {args.small:,} examples: {ratio:.2f}x (goal < 3x); "
        f"{args.large:,}: {timings[args.large] * 1000:.0f} ms (goal < 1000 ms)"
    )

    rng = random.Random(5)
    words = [f"w{i}" for i in range(3000)]
    items = []
    planted = {}
    for example_id in range(1, args.dedup - 2000 + 1):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(25, 60)))
        items.append((example_id, [{"role": "user", "content": text}]))
    for number in range(2000):
        original_id, messages = items[rng.randrange(len(items))]
        tokens = messages[0]["content"].split()
        tokens[-1] = rng.choice(words)  # the last word changed: Jaccard over word 3-grams about 0.9
        copy_id = args.dedup + number + 1
        planted[copy_id] = original_id
        items.append((copy_id, [{"role": "user", "content": " ".join(tokens)}]))
    rng.shuffle(items)
    start = time.perf_counter()
    clusters = quality.duplicate_clusters(items, threshold=quality.THRESHOLDS.near_duplicate_threshold)
    seconds = time.perf_counter() - start
    found = sum(1 for copy, original in planted.items() if clusters.get(copy) == clusters.get(original) is not None)
    print(
        f"near duplicates on {len(items):,} examples: {len(items) / seconds:,.0f} examples/s, "
        f"recall {found / len(planted):.3f} on {len(planted):,} planted (goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
