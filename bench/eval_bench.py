"""Evaluation speed: answers/s of the batched evaluation path against one-at-a-time generation, on the same model
(tiny-local + a LoRA adapter trained here) and the same prompts, in the same run. Goal: at least 4x on the CPU.
Also the batched path with the adapter merged into the weights.

Run: `.venv/bin/python bench/eval_bench.py [--queries 96]`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo  # noqa: E402
from evaluation import harness  # noqa: E402
from training.recipes import sft, tiny_local  # noqa: E402


def one_at_a_time(base: str, adapter: str, conversations: list) -> float:
    model, tokenizer = sft.load_for_inference(base, adapter)
    started = time.perf_counter()
    for conversation in conversations:
        sft.generate(model, tokenizer, [conversation], max_new_tokens=128, batch_size=1)
    return len(conversations) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    rows = demo.generate()
    train, test = rows[:640], rows[700 : 700 + args.queries]
    print("building tiny-local (cached after the first run) and a LoRA adapter ...", flush=True)
    base = str(
        tiny_local.build(tiny_local.corpus_documents(r["messages"] for r in train), ROOT / "bench" / "out" / "models")
    )
    conversations = [row["messages"][:-1] for row in test]
    with tempfile.TemporaryDirectory() as folder:
        config = sft.SFTConfig(base_model=base, max_steps=60, batch_size=16, eval_every=10**9, checkpoint_every=10**9)
        adapter = str(sft.run(config, train, [], Path(folder)).adapter_dir)
        runs = {"one": [], "batched": [], "merged": []}
        for _ in range(2):  # interleaved, best of two: these machines are noisy
            runs["one"].append(one_at_a_time(base, adapter, conversations))
            batched = harness.local_answers(
                base, conversations, adapter_dir=adapter, batch_size=args.batch, latency_sample=0
            )
            runs["batched"].append(batched.queries_per_second)
            merged = harness.local_answers(
                base, conversations, adapter_dir=adapter, merge=True, batch_size=args.batch, latency_sample=0
            )
            runs["merged"].append(merged.queries_per_second)
    one, many, merged = max(runs["one"]), max(runs["batched"]), max(runs["merged"])
    print(f"one at a time:               {one:6.1f} answers/s")
    print(f"batched ({args.batch} a batch):          {many:6.1f} answers/s")
    print(f"batched, adapter merged:     {merged:6.1f} answers/s")
    print(f"ratio batched / one at a time: {many / one:.1f}x (goal >= 4x)")


if __name__ == "__main__":
    main()
