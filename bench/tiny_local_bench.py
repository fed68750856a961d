"""Time to the first training step of a run on `tiny-local`: 15,000 long examples next to the demo's 640, in the same
run, from the rows to the first step (the base's corpus, tokenizer, pretraining and save, then the recipe's
tokenization of the examples and its first step). Goal: the long set under 2 minutes on 2 cores, and the build's
time about the same for both (the pretraining corpus is bounded: `tiny_local.corpus_documents`).

The long examples are demo tickets with a 3-8 KB context pasted in (log lines, prose over a 3,000-word vocabulary
with a Zipf law, ids and numbers), deterministic. Each stage's time comes from the build's own progress reports.
`--unbounded` also times what the former build did first on the long set: a tokenizer trained on, and a stream
tokenized from, every message (no pretraining).

Run: `.venv/bin/python bench/tiny_local_bench.py [--examples 15000] [--max-seq-length 2048] [--unbounded]
[--threads N] [--pretrain-steps N (a smoke run)]`.
"""

import argparse
import itertools
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo  # noqa: E402
from training.recipes import sft, tiny_local  # noqa: E402

LETTERS = "etaoinshrdlcumwfgypbvkjxqz"


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words = set()
    while len(words) < size:
        length = min(12, max(2, int(rng.gauss(5, 2))))
        words.add("".join(rng.choices(LETTERS, weights=range(26, 0, -1), k=length)))
    return sorted(words)


def long_examples(count: int, seed: int = 0) -> list[dict]:
    """Demo tickets, each with a 3-8 KB context: prose, log lines with ids and numbers."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))  # Zipf
    tickets = demo.generate(count=900)
    rows = []
    for number in range(count):
        size, parts = rng.randint(3000, 8000), []
        while sum(map(len, parts)) < size:
            if rng.random() < 0.3:
                parts.append(
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                    f"{rng.randint(0, 59):02d} ERROR req_{rng.getrandbits(32):08x} {rng.choice(words)} failed "
                    f"after {rng.randint(1, 30000)} ms (code E{rng.randint(100, 999)})\n"
                )
            else:
                sentence = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(6, 20)))
                parts.append(sentence.capitalize() + ". ")
        messages = [dict(message) for message in tickets[number % len(tickets)]["messages"]]
        messages[1]["content"] += "\n\nContext:\n" + "".join(parts)
        rows.append({"messages": messages, "id": number})
    return rows


def first_step(rows: list[dict], folder: Path, max_seq_length: int, tiny: tiny_local.TinyConfig) -> dict:
    """Seconds from the rows to the end of the first training step, by stage, and what the run saw."""
    marks: list[tuple[str, float]] = []  # (stage, when it started)
    started = time.perf_counter()

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter() - started))

    mark("sampling the corpus")
    documents = tiny_local.corpus_documents(row["messages"] for row in rows)
    base = tiny_local.build(
        documents, folder / "models", tiny, on_log=lambda entry: mark(entry["stage"]) if not entry["step"] else None
    )
    mark("loading the base's tokenizer")
    built = marks[-1][1]
    log = []

    def on_log(entry: dict) -> None:
        log.append(entry)
        if entry["event"] == "build":
            mark(entry["stage"])
        elif entry["event"] == "start":
            mark("first training step")
        elif entry["event"] == "step":
            mark("end")

    config = sft.SFTConfig(
        base_model=str(base),
        max_seq_length=max_seq_length,
        batch_size=16,
        max_steps=10**6,
        eval_every=10**9,
        checkpoint_every=10**9,
    )
    sft.run(config, rows, [], folder / "run", on_log=on_log, should_stop=lambda: any(e["event"] == "step" for e in log))
    stages = {name: marks[i + 1][1] - at for i, (name, at) in enumerate(marks[:-1])}
    start = next(entry for entry in log if entry["event"] == "start")
    return {
        "total": marks[-1][1],
        "started": dict(marks)["first training step"],
        "build": built,
        "stages": stages,
        "corpus_chars": sum(map(len, documents)),
        "all_chars": sum(len(m["content"]) for row in rows for m in row["messages"]),
        "truncation": start["truncation"],
    }


def unbounded(rows: list[dict]) -> dict:
    """The former build's first two stages on every message: tokenizer training, then the stream's tokenization."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    documents = tiny_local.GENERIC + [m["content"] for row in rows for m in row["messages"]]
    started = time.perf_counter()
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=tiny_local.SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(documents, trainer=trainer)
    trained = time.perf_counter() - started
    tokens = sum(len(raw.encode(document).ids) for document in documents)  # one at a time, as it did
    tokenized = time.perf_counter() - started - trained
    return {"chars": sum(map(len, documents)), "tokenizer": trained, "tokenize": tokenized, "tokens": tokens}


def show(name: str, result: dict) -> None:
    cut = result["truncation"]
    print(f"\n{name}: training starts after {result['started']:.1f} s; the first step ends at {result['total']:.1f} s")
    print(f"  pretraining corpus {result['corpus_chars']:,} characters (the rows hold {result['all_chars']:,})")
    for stage, seconds in result["stages"].items():
        print(f"  {stage:<34} {seconds:7.1f} s")
    print(
        f"  truncated at {cut['max_seq_length']:,} tokens: {cut['truncated']:,} of {cut['examples']:,} "
        f"({cut['dropped']:,} left out; the longest has {cut['longest']:,} tokens)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=15_000)
    parser.add_argument("--max-seq-length", type=int, default=2048)
    parser.add_argument("--unbounded", action="store_true")
    parser.add_argument("--pretrain-steps", type=int, default=tiny_local.TinyConfig().pretrain_steps, help="smoke runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    import peft  # noqa: F401  (imported before the clocks start: a worker has them loaded after its first run)
    import torch
    import transformers  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = tiny_local.TinyConfig(pretrain_steps=args.pretrain_steps)
    print(f"torch threads: {torch.get_num_threads()}; pretraining: {tiny.pretrain_steps} steps")
    small = demo.generate()[:640]
    started = time.perf_counter()
    large = long_examples(args.examples)
    print(f"{len(large):,} long examples generated in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        demo_result = first_step(small, Path(folder) / "demo", args.max_seq_length, tiny)
        show(f"demo ({len(small)} examples)", demo_result)
        long_result = first_step(large, Path(folder) / "long", args.max_seq_length, tiny)
        show(f"long ({len(large):,} examples of 3-8 KB)", long_result)
    build = {"demo": demo_result["build"], "long": long_result["build"]}
    print(
        f"\nratio long / demo: to the start of training {long_result['started'] / demo_result['started']:.2f}x "
        f"({long_result['started']:.1f} s / {demo_result['started']:.1f} s); the base's build (corpus to saved model) "
        f"{build['long'] / build['demo']:.2f}x ({build['long']:.1f} s / {build['demo']:.1f} s)"
    )
    met = "met" if long_result["started"] < 120 else "NOT met"
    print(f"goal: training starts on the long set within 120 s: {met}")
    if args.unbounded:
        former = unbounded(large)
        print(
            f"\nthe former build on every message of the long set ({former['chars']:,} characters, "
            f"{former['tokens']:,} tokens): tokenizer {former['tokenizer']:.1f} s, stream {former['tokenize']:.1f} s "
            "before its first pretraining step"
        )


if __name__ == "__main__":
    main()
