"""Import speed, measured side by side in one run (these machines are noisy, so ratios matter, not seconds).

1. 100,000 generated examples (about 69 MB of JSONL) POSTed to the import API of a real gunicorn server on
   PostgreSQL, as deployed: a body that large is spooled and answered 202, and a Celery worker imports it; the time
   runs from the POST to the job's end (polled every 50 ms). Against psycopg's binary COPY of the same rows into a
   bare table (parsing and hashing in Python included): rows/s for both and their ratio. Goal: API >= 0.5 of COPY
   (issue 16; it was 0.25). The worker stops after this part: the quality scan each import queues would otherwise
   run beside the parts below, which post to a second server that imports every body within its request.
2. 1,000 new rows imported into a project that holds 500,000 and into an empty one: the ratio of the times
   (median of 3). Goal: under 1.5.
3. The peak memory (VmHWM) of the gunicorn worker that served the imports. Goal: under 300 MB for a 100 MB body
   (`--rows 145000` makes one). `--main-only` runs just parts 1 and 3.
4. A column mapping's cost: the same examples sent as chat-format JSONL (no mapping), as flat
   sys/instruction/context/response/category rows through `?mapping=` (JSONL, then CSV): API rows/s of each (median
   of 3, each into a fresh project) and the parse-only rows/s in one process (no database). Goal: mapped >= 0.8 of
   plain. `--mapping-only` runs just this part.

Needs PostgreSQL (DATABASE_URL's server; default 127.0.0.1:5432, user postgres). Uses its own database,
`fineline_bench` (or $BENCH_DB), created afresh. Run: `make bench` or
`.venv/bin/python bench/import_bench.py [--rows N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import orjson
import psycopg
import redis
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from curation import demo  # noqa: E402

SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# BENCH_DB: another name, for two benches on one server at once.
DB_NAME = os.environ.get("BENCH_DB", "fineline_bench")


def generate(path: Path, rows: int, seed: int) -> int:
    """Write `rows` distinct tickets in the demo's style; returns the file size."""
    rng = random.Random(seed)
    products = list(demo.PRODUCTS)
    with path.open("wb") as out:
        for number in range(rows):
            severity = rng.choices(list(demo.WEIGHTS), list(demo.WEIGHTS.values()))[0]
            template, impact, action = rng.choice(demo.SCENARIOS[severity])
            product = rng.choice(products)
            slots = {
                "p": product,
                "c": rng.choice(demo.PRODUCTS[product]),
                "n": rng.randint(2, 5000),
                "r": rng.choice(demo.REGIONS),
                "e": rng.choice(demo.ERRORS),
                "k": rng.choice(demo.CUSTOMERS),
                "t": rng.choice(demo.TEAMS),
            }
            ticket = demo._styled(template.format(**slots), rng.choice(demo.STYLES), rng)
            row = {
                "messages": [
                    {"role": "system", "content": demo.SYSTEM_PROMPT},
                    {"role": "user", "content": f"{ticket} (ref {seed}-{number})"},
                    {
                        "role": "assistant",
                        "content": demo._answer(severity, impact.format(**slots), action.format(**slots)),
                    },
                ],
                "label": severity,
                "metadata": {"ticket_id": f"B{seed}-{number}", "channel": rng.choice(demo.CHANNELS)},
            }
            out.write(orjson.dumps(row) + b"\n")
    return path.stat().st_size


def django_on_fresh_database(db_name: str, *, keep: bool = False, **env: str) -> None:
    """For the benches that run Django in their own process: drop and create `db_name` (`keep`: reuse it when it
    exists), point this process at it (plus `env`), set Django up and migrate."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if not (keep and exists):
            admin.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {db_name}")
    os.environ.update(
        {
            "DATABASE_URL": f"{SERVER}/{db_name}",
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "FINELINE_VAR_DIR": str(ROOT / "bench" / "out" / "var"),
            **env,
        }
    )
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post_file(
    port: int, token: str, slug: str, path: Path, content_type: str = "application/x-ndjson", query: str = ""
) -> tuple[float, dict]:
    size = path.stat().st_size
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800, blocksize=1 << 20)  # as curl sends
    headers = {"Authorization": f"Token {token}", "Content-Type": content_type, "Content-Length": str(size)}
    with path.open("rb") as body:
        start = time.perf_counter()
        url = f"/api/v1/projects/{slug}/imports/?mode=partial{query}"
        connection.request("POST", url, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
    report = json.loads(payload)
    if response.status == 202:  # a large body: queued for the worker, followed to its end as the upload page does
        phases = {"answered 202": elapsed}
        while report["status"] in ("queued", "running"):
            if report["status"] == "running" and "worker started" not in phases:
                phases["worker started"] = time.perf_counter() - start
            time.sleep(0.05)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", report["url"], headers={"Authorization": f"Token {token}"})
            report = json.loads(connection.getresponse().read())
        elapsed = time.perf_counter() - start
        print("  " + ", ".join(f"{name} after {seconds:.2f} s" for name, seconds in phases.items())
              + f", done after {elapsed:.2f} s", flush=True)  # fmt: skip
        if report["status"] not in ("succeeded", "partial"):
            raise SystemExit(f"import failed: {report['status']} {report.get('error')!r} {report['errors'][:3]}")
    elif response.status != 201:
        raise SystemExit(f"import failed: {response.status} {payload[:500]!r}")
    return elapsed, report


def copy_baseline(dsn: str, path: Path) -> tuple[float, int]:
    """psycopg binary COPY of the same rows into a bare table: parse, hash, write. The ceiling we compare to."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (id bigserial primary key, messages jsonb, label text, tags jsonb,"
            " metadata jsonb, content_hash text unique)"
        )
        start = time.perf_counter()
        rows = 0
        with conn.cursor() as cursor, path.open("rb") as source:
            with cursor.copy(
                "COPY bench_copy (messages, label, tags, metadata, content_hash) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["jsonb", "text", "jsonb", "jsonb", "text"])
                for line in source:
                    row = orjson.loads(line)
                    messages = row["messages"]
                    digest = hashlib.sha256(orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)).hexdigest()
                    copy.write_row(
                        (Jsonb(messages), row.get("label", ""), Jsonb([]), Jsonb(row.get("metadata", {})), digest)
                    )
                    rows += 1
        return time.perf_counter() - start, rows


MAPPING = {
    "system": "sys",
    "user": ["instruction", "context"],
    "assistant": "response",
    "label": "category",
    "metadata": ["ticket_id", "channel"],
}


def flatten(source: Path, jsonl_out: Path, csv_out: Path) -> None:
    """The same examples as flat rows in another shape (an empty `context` on every other row), as JSONL and CSV."""
    import csv

    columns = ["sys", "instruction", "context", "response", "category", "ticket_id", "channel"]
    with source.open("rb") as rows, jsonl_out.open("wb") as flat, csv_out.open("w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(columns)
        for number, line in enumerate(rows):
            row = orjson.loads(line)
            system, user, assistant = (m["content"] for m in row["messages"])
            context = "" if number % 2 else None
            flat_row = {
                "sys": system,
                "instruction": user,
                "context": context,
                "response": assistant,
                "category": row["label"],
                **row["metadata"],
            }
            flat.write(orjson.dumps(flat_row) + b"\n")
            writer.writerow([flat_row[column] or "" for column in columns])


def parse_rate(kind: str, path: Path, mapping) -> float:
    """Rows/s of reading and checking a file in this process: no server, no database."""
    from curation import formats

    limits = formats.Limits()
    start = time.perf_counter()
    with path.open("rb") as stream:
        records = formats.read_input(
            kind, stream, fmt="auto", labels=["P1", "P2", "P3", "P4"], limits=limits, max_body_bytes=1 << 40,
            mapping=formats.mapping_parse(orjson.dumps(MAPPING)) if mapping else None,
        )  # fmt: skip
        count = sum(isinstance(record, formats.ParsedExample) for record in records)
    return count / (time.perf_counter() - start)


def mapping_case(port: int, token: str, main_file: Path) -> dict:
    flat_jsonl, flat_csv = OUT / "flat.jsonl", OUT / "flat.csv"
    flatten(main_file, flat_jsonl, flat_csv)
    query = "&mapping=" + urllib.parse.quote(json.dumps(MAPPING))
    cases = {
        "plain": (main_file, "application/x-ndjson", ""),
        "jsonl": (flat_jsonl, "application/x-ndjson", query),
        "csv": (flat_csv, "text/csv", query),
    }
    rates: dict[str, list[float]] = {kind: [] for kind in cases}
    for attempt in range(3):
        for kind, (path, content_type, extra) in cases.items():
            seconds, report = post_file(port, token, f"map-{kind}-{attempt}", path, content_type, extra)
            assert report["status"] == "succeeded", report
            rates[kind].append(report["created"] / seconds)
    api = {kind: statistics.median(values) for kind, values in rates.items()}
    inputs = {
        "plain": ("jsonl", main_file, False),
        "jsonl": ("jsonl", flat_jsonl, True),
        "csv": ("csv", flat_csv, True),
    }
    parse_runs: dict[str, list[float]] = {kind: [] for kind in inputs}
    for _ in range(3):  # interleaved, as the API runs are: a noisy neighbour slows all three alike
        for kind, (reader, path, mapped) in inputs.items():
            parse_runs[kind].append(parse_rate(reader, path, mapped))
    parse = {kind: statistics.median(values) for kind, values in parse_runs.items()}
    for kind, label in (
        ("plain", "chat JSONL, no mapping"),
        ("jsonl", "flat JSONL + mapping"),
        ("csv", "CSV + mapping"),
    ):
        print(
            f"{label:24}: API {api[kind]:>9,.0f} rows/s ({api[kind] / api['plain']:.2f} of plain);"
            f" parse only {parse[kind]:>9,.0f} rows/s ({parse[kind] / parse['plain']:.2f})",
            flush=True,
        )
    return {
        "mapping_api_rows_per_s": {kind: round(rate) for kind, rate in api.items()},
        "mapping_parse_rows_per_s": {kind: round(rate) for kind, rate in parse.items()},
        "mapped_jsonl_over_plain_api": round(api["jsonl"] / api["plain"], 3),
        "mapped_csv_over_plain_api": round(api["csv"] / api["plain"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the main import (default 100,000)")
    parser.add_argument("--big", type=int, default=500_000, help="size of the large project (default 500,000)")
    parser.add_argument("--mapping-only", action="store_true", help="only part 4: the cost of a column mapping")
    parser.add_argument("--main-only", action="store_true", help="only parts 1 and 3: the main import and its memory")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    dsn = f"{SERVER}/{DB_NAME}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "0",
        "FINELINE_VAR_DIR": str(OUT / "var"),
        # Redis as deployed, when it runs here (its own database); else the filesystem broker of make run.
        "REDIS_URL": os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12"),
    }
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
    setup = (
        "from django.contrib.auth.models import User; from curation import services;"
        "u = User.objects.create_user('bench');"
        "[services.project_create(creator=u, name=s, slug=s, labels=['P1','P2','P3','P4']) for s in "
        "('main', 'big', 'empty', *[f'map-{kind}-{i}' for kind in ('plain', 'jsonl', 'csv') for i in range(3)])]"
    )
    subprocess.run([*manage, "shell", "-c", setup], env=env, check=True, cwd=ROOT)
    token = subprocess.run(
        [*manage, "create_api_token", "bench"], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()

    print(f"generating {args.rows:,} rows ...", flush=True)
    main_file = OUT / "main.jsonl"
    size = generate(main_file, args.rows, seed=1)
    print(f"  {size / 1e6:.1f} MB", flush=True)

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # no task left queued by a run before
    port, sync_port = free_port(), free_port()
    servers = [  # gunicorn as deployed (deploy/gunicorn.conf.py: the URLconf loaded before the first request)
        subprocess.Popen(
            [
                python,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "config.wsgi:application",
                "--log-level",
                "warning",
            ],
            env={
                **env,
                **extra,
                "GUNICORN_BIND": f"127.0.0.1:{bind}",
                "GUNICORN_WORKERS": "1",
                "GUNICORN_TIMEOUT": "1800",
            },
            cwd=ROOT,
        )  # fmt: skip
        for bind, extra in ((port, {}), (sync_port, {"FINELINE_IMPORT_SYNC_MAX_BYTES": str(1 << 40)}))
    ]
    server = servers[0]
    # The worker that imports a large body (over FINELINE_IMPORT_SYNC_MAX_BYTES: answered 202), as deployed.
    celery = subprocess.Popen(
        [python, "-m", "celery", "-A", "config", "worker", "--queues", "default", "--pool", "solo", "--loglevel",
         "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        wait_for(port)
        wait_for(sync_port)
        for each in (port, sync_port):  # the port opens before the worker has booted: wait for it
            warm = http.client.HTTPConnection("127.0.0.1", each, timeout=60)
            warm.request("GET", "/api/v1/projects/main/imports/", headers={"Authorization": f"Token {token}"})
            assert warm.getresponse().status == 200
        worker = children(server.pid)[0]
        sync_worker = children(servers[1].pid)[0]
        if args.mapping_only:
            results = {"rows": args.rows, **mapping_case(sync_port, token, main_file)}
            (OUT / "import_bench_mapping.json").write_text(json.dumps(results, indent=2))
            return

        api_seconds, report = post_file(port, token, "main", main_file)
        api_rate = report["created"] / api_seconds
        peak_main = peak_rss_mb(worker)
        copy_seconds, copy_rows = copy_baseline(dsn, main_file)
        copy_rate = copy_rows / copy_seconds
        print(f"API import : {report['created']:,} rows in {api_seconds:.2f} s = {api_rate:,.0f} rows/s", flush=True)
        print(f"binary COPY: {copy_rows:,} rows in {copy_seconds:.2f} s = {copy_rate:,.0f} rows/s", flush=True)
        print(f"ratio API / COPY: {api_rate / copy_rate:.2f}  (goal >= 0.5)", flush=True)
        peak_celery = peak_rss_mb(celery.pid)
        print(
            f"peak RSS after the {args.rows:,}-row import: web worker {peak_main:.0f} MB, Celery worker (which imported"
            f" it) {peak_celery:.0f} MB (goal < 300)",
            flush=True,
        )
        main_results = {
            "rows": args.rows,
            "file_mb": round(size / 1e6, 1),
            "api_rows_per_s": round(api_rate),
            "copy_rows_per_s": round(copy_rate),
            "api_over_copy": round(api_rate / copy_rate, 3),
            "server_peak_rss_mb_main_import": round(peak_main),
            "celery_peak_rss_mb_main_import": round(peak_celery),
        }
        if args.main_only:
            (OUT / "import_bench_main.json").write_text(json.dumps(main_results, indent=2))
            return
        celery.kill()  # the scan the import queued would run beside what comes next
        port, worker = sync_port, sync_worker

        print(f"filling the large project with {args.big:,} rows ...", flush=True)
        chunk = 100_000
        for part in range(0, args.big, chunk):
            path = OUT / "big.jsonl"
            generate(path, min(chunk, args.big - part), seed=100 + part // chunk)
            post_file(port, token, "big", path)
        small_times, big_times = [], []
        for attempt in range(3):
            path = OUT / f"thousand-{attempt}.jsonl"
            generate(path, 1000, seed=9000 + attempt)
            big_times.append(post_file(port, token, "big", path)[0])
            small_times.append(post_file(port, token, "empty", path)[0])
        big_t, small_t = statistics.median(big_times), statistics.median(small_times)
        print(
            f"1,000 rows into a project of {args.big:,}: {big_t * 1000:.0f} ms; into an empty one: "
            f"{small_t * 1000:.0f} ms; ratio {big_t / small_t:.2f} (goal < 1.5)",
            flush=True,
        )
        mapping_results = mapping_case(port, token, main_file)
        peak_all = peak_rss_mb(worker)
        print(f"peak RSS of the server worker over the whole run: {peak_all:.0f} MB", flush=True)
        results = {
            **main_results,
            "thousand_into_big_ms": round(big_t * 1000),
            "thousand_into_empty_ms": round(small_t * 1000),
            "big_over_empty": round(big_t / small_t, 3),
            "big_rows": args.big,
            "server_peak_rss_mb_whole_run": round(peak_all),
            **mapping_results,
        }
        (OUT / "import_bench.json").write_text(json.dumps(results, indent=2))
    finally:
        celery.kill()
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
        celery.wait(timeout=60)
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()


if __name__ == "__main__":
    main()
