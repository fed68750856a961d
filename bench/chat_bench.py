"""Latency of the "try the model" chat on `tiny-local`, as a `gpu`-queue worker answers it: time to the first token
and to the whole answer, the fine-tune and its base side by side (the base is the same loaded model with its LoRA
adapter switched off), on the demo's held-out tickets with the project's system prompt. Also the model load a
worker pays once per run (from the final adapter and from a training checkpoint), which the worker then keeps.

The model is built and fine-tuned here first (a tiny-local base, then LoRA), as `make run`'s demo does.

Run: `.venv/bin/python bench/chat_bench.py [--pretrain-steps 600] [--train-steps 60] [--queries 20] [--threads N]
[--max-new-tokens 128]`.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo  # noqa: E402
from training.recipes import chat, sft, tiny_local  # noqa: E402

SYSTEM = "You are a technical support agent. Triage the ticket."


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def row(name: str, values: list[float]) -> str:
    return f"{name:<34} p50 {statistics.median(values):8.1f} ms   p95 {percentile(values, 95):8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: the worker's rule: one for a small model on the CPU)"
    )
    parser.add_argument("--folder", help="keep the built base and the run here, and reuse them on the next run")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        chat.SMALL_MODEL = 0  # the threads asked for, not the worker's rule
    rows = demo.generate(count=400)
    for example in rows:
        example["messages"][0]["content"] = SYSTEM
    train, held = rows[: -args.queries], rows[-args.queries :]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.folder or temporary)
        started = time.perf_counter()
        documents = tiny_local.corpus_documents(example["messages"] for example in train)
        base = str(tiny_local.build(documents, folder, tiny_local.TinyConfig(pretrain_steps=args.pretrain_steps)))
        built = time.perf_counter() - started
        config = sft.SFTConfig(
            base_model=base, max_steps=args.train_steps, batch_size=16, learning_rate=5e-3, checkpoint_every=10
        )
        started = time.perf_counter()
        adapter = folder / "run" / "adapter"
        if not adapter.is_dir():
            sft.run(config, train, [], folder / "run")
        trained = time.perf_counter() - started
        print(f"tiny-local built in {built:.1f} s ({args.pretrain_steps} pretraining steps); LoRA {trained:.1f} s")

        started = time.perf_counter()
        model, tokenizer = sft.load_for_inference(base, adapter)
        load_adapter = (time.perf_counter() - started) * 1000
        checkpoint = sft.latest_checkpoint(folder / "run")
        started = time.perf_counter()
        chat.load_checkpoint(config, checkpoint)
        load_checkpoint = (time.perf_counter() - started) * 1000

        conversations = [[m for m in example["messages"] if m["role"] != "assistant"] for example in held]
        timings = {"fine_tuned": ([], [], []), "base": ([], [], [])}
        cold = None
        for conversation in conversations:
            for system in ("fine_tuned", "base"):
                if system == "base":
                    with chat.base_of(model):
                        reply = chat.answer(model, tokenizer, conversation, max_new_tokens=args.max_new_tokens)
                else:
                    reply = chat.answer(model, tokenizer, conversation, max_new_tokens=args.max_new_tokens)
                cold = cold or reply
                first, total, tokens = timings[system]
                first.append(reply.first_token_ms)
                total.append(reply.latency_ms)
                tokens.append(reply.new_tokens)

    threads = args.threads or "1 (the worker's rule for a small model on the CPU)"
    print(f"torch threads: {threads}; {len(conversations)} held-out tickets; greedy, up to "
          f"{args.max_new_tokens} new tokens")  # fmt: skip
    print(f"{'load from the final adapter':<34} {load_adapter:8.1f} ms (once per run and worker: then cached)")
    print(f"{'load from a training checkpoint':<34} {load_checkpoint:8.1f} ms")
    cold_line = f"first token {cold.first_token_ms:.1f} ms, whole {cold.latency_ms:.1f} ms"
    print(f"{'first answer after the load':<34} {cold_line}")
    for system, (first, total, tokens) in timings.items():
        print(row(f"{system}: first token", first))
        print(row(f"{system}: whole answer", total) + f"   ({statistics.median(tokens):.0f} tokens p50)")
    both = [a + b for a, b in zip(timings["fine_tuned"][1], timings["base"][1], strict=True)]
    print(row("both answers, one after the other", both))


if __name__ == "__main__":
    main()
