"""A JSON-array import's memory, streamed (ijson events, one element built at a time) against parsed whole
(orjson.loads of the body, as before): the peak resident memory of a process that reads a 30 MB array of chat
examples through the import's row reader, each in its own fresh process, and the rows/s of each. Goal: the streamed
peak grows by under 50 MB over the process's baseline, whatever the array's size.

Run: `.venv/bin/python bench/json_array_bench.py [--mb 30]`. No database needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import io, json, os, resource, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
import django; django.setup()
from curation import formats
path, mode = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
with open(path, "rb") as body:
    if mode == "streamed":
        rows = formats.read_rows("json", body, limits=formats.Limits(), max_body_bytes=1 << 40)
    else:
        rows = formats.rows_json_document(body.read())
    count = sum(1 for _ in rows)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": count, "seconds": seconds, "base_mb": base / 1024, "peak_mb": peak / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    row = {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "The export to CSV fails for every user since this morning's release. " * 3},
            {"role": "assistant", "content": "SEVERITY: P2\nIMPACT: every user\nACTION: roll back the release"},
        ],
        "label": "P2",
        "metadata": {"source": "tickets", "id": 12345},
    }
    line = json.dumps(row).encode()
    count = int(args.mb * 1e6 / (len(line) + 1))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        handle.write(b"[" + b",".join([line] * count) + b"]")
    results = {}
    try:
        for mode in ("whole", "streamed"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, handle.name, mode], cwd=ROOT, capture_output=True, text=True, check=True
            )
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(handle.name)
    print(f"JSON array of {count:,} examples, {args.mb:.0f} MB")
    for mode, result in results.items():
        grew = result["peak_mb"] - result["base_mb"]
        print(
            f"  {mode:8s}: peak {result['peak_mb']:.0f} MB (+{grew:.0f} MB over the process's baseline), "
            f"{result['rows'] / result['seconds']:,.0f} rows/s"
        )
    ratio = (results["streamed"]["rows"] / results["streamed"]["seconds"]) / (
        results["whole"]["rows"] / results["whole"]["seconds"]
    )
    grew = results["streamed"]["peak_mb"] - results["streamed"]["base_mb"]
    verdict = "met" if grew < 50 else "NOT met"
    print(f"  streamed speed / whole speed: {ratio:.2f}; goal (streamed growth under 50 MB): {verdict}")


if __name__ == "__main__":
    main()
