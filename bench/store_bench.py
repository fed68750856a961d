"""What the artifact store costs a run, in one process: the same tiny-local LoRA run (checkpoints every few steps)
with no store, with the local-folder store (the default) and with an S3-compatible store (moto's server on
loopback), each storing every checkpoint and the adapter as the worker does. Prints the wall-time ratios against no
store, the bytes moved per checkpoint, and how long another node takes to fetch the last checkpoint back.

Run: `.venv/bin/python bench/store_bench.py [--steps N] [--every N] [--repeat N]`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from core.store import Store  # noqa: E402
from curation import demo  # noqa: E402
from tests.helpers import S3_ENV, start_s3_server  # noqa: E402
from training.recipes import sft, tiny_local  # noqa: E402


def one_run(base: str, rows: list[dict], folder: Path, store: Store | None, steps: int, every: int) -> dict:
    config = sft.SFTConfig(
        base_model=base, max_steps=steps, batch_size=8, eval_every=10**9, checkpoint_every=every, learning_rate=5e-3
    )
    moved: list[int] = []

    def on_log(entry: dict) -> None:
        if store is not None and entry["event"] == "checkpoint":
            name = f"step-{entry['step']}"
            moved.append(store.put_folder(folder / "checkpoints" / name, f"runs/run-1/checkpoints/{name}"))

    started = time.perf_counter()
    result = sft.run(config, rows, [], folder, on_log=on_log)
    adapter = store.put_folder(result.adapter_dir, "runs/run-1/adapter") if store is not None else 0
    seconds = time.perf_counter() - started
    fetch = None
    if store is not None:
        last = store.units("runs/run-1/checkpoints")[-1]
        began = time.perf_counter()
        store.get_folder(f"runs/run-1/checkpoints/{last}", folder / "node-b" / last)
        fetch = time.perf_counter() - began
    return {"seconds": seconds, "per_checkpoint": statistics.mean(moved) if moved else 0, "adapter": adapter,
            "fetch": fetch}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(S3_ENV)
    rows = demo.generate(count=200)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        documents = tiny_local.corpus_documents(row["messages"] for row in rows)
        base = str(tiny_local.build(documents, folder / "models", tiny_local.TinyConfig(pretrain_steps=50)))
        server, endpoint = start_s3_server()
        try:
            stores = {
                "none": lambda n: None,
                "local": lambda n: Store(str(folder / f"store-{n}")),
                "s3": lambda n: Store(f"s3://fineline/bench-{n}", endpoint),
            }
            results: dict[str, list[dict]] = {name: [] for name in stores}
            for n in range(args.repeat):  # interleaved, so that the machine's noise falls on every mode alike
                for name, make in stores.items():
                    results[name].append(one_run(base, rows, folder / f"{name}-{n}", make(n), args.steps, args.every))
        finally:
            server.terminate()
            server.wait()
    best = {name: min(entry["seconds"] for entry in entries) for name, entries in results.items()}
    print(f"tiny-local LoRA, {args.steps} steps, a checkpoint every {args.every} (best of {args.repeat}):")
    for name in ("none", "local", "s3"):
        line = f"  store {name:5}  {best[name]:6.2f} s  ({best[name] / best['none']:.3f}x no store)"
        if name != "none":
            entry = results[name][-1]
            line += (f", {entry['per_checkpoint']:,.0f} bytes per checkpoint, adapter {entry['adapter']:,} bytes, "
                     f"last checkpoint fetched back in {entry['fetch'] * 1000:.0f} ms")  # fmt: skip
        print(line)
    print(f"  s3 against local: {best['s3'] / best['local']:.3f}x")


if __name__ == "__main__":
    main()
