"""Generation throughput: candidates/s of the generation job's two paths, with the checks a job runs on each reply
(parse, chat-format and import limits, output format, near duplicates against the label's examples).

1. The frontier source: the real `openai` client against the local OpenAI-compatible stand-in (tests/evaluation/
   openai_server.py) over loopback, 4 requests at a time as the job sends them, with the stand-in answering at once
   and after a simulated model latency (a real endpoint's time is the model's, not ours).
2. A local source: tiny-local (built here from the demo, cached in bench/out/models) with the job's prompts (k=4
   seed examples of P1), batched greedy generation at the job's new-token budget. tiny-local is a 1.3M-parameter
   model trained on tickets, not on writing JSON: it measures the path's speed, and how few of its replies parse.

Run: `.venv/bin/python bench/generate_bench.py [--count 64] [--latency-ms 300]`. No database is needed.
"""

import argparse
import itertools
import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo, formats, quality  # noqa: E402
from evaluation import candidates, harness  # noqa: E402
from tests.evaluation.openai_server import OpenAIServer  # noqa: E402
from training.recipes import tiny_local  # noqa: E402

PATTERN = r"(?s)SEVERITY: P[1-4]\nIMPACT: .+\nACTION: .+"


def prompts(rows: list[dict], count: int, k: int = 4) -> tuple[list[list[dict]], list[list[dict]]]:
    seeds = [row["messages"] for row in rows if row.get("label") == "P1"][:200]
    system = candidates.instruction(
        label="P1",
        task_description="Triage support tickets.",
        format_hint=candidates.format_hint({"kind": "regex", "pattern": PATTERN}),
    )
    choices = candidates.seed_choices(range(len(seeds)), count=count, k=k, seed=0)
    return [
        candidates.generation_messages(system=system, label="P1", seeds=[seeds[i] for i in c]) for c in choices
    ], seeds


def check(replies: list[str], existing: list[list[dict]]) -> dict:
    """What a job does with the replies, minus the database: parse, validate, format, near duplicates."""
    fits = formats.answer_checker({"kind": "regex", "pattern": PATTERN})
    valid, counts = [], {"written": 0, "rejected_format": 0, "rejected_duplicate": 0}
    for i, reply in enumerate(replies):
        try:
            messages = candidates.parse_candidate(reply, system_prompt="You are a support agent.")
        except candidates.CandidateError:
            counts["rejected_format"] += 1
            continue
        parsed = formats.parse_object(
            {"messages": messages, "label": "P1"},
            i + 1,
            fmt="openai",
            labels=frozenset({"P1"}),
            limits=formats.Limits(),
        )
        if isinstance(parsed, formats.LineError) or not fits(formats.last_answer(parsed.messages)):
            counts["rejected_format"] += 1
            continue
        valid.append(parsed.messages)
    items = itertools.chain(enumerate(existing, 1), ((-(i + 1), m) for i, m in enumerate(valid)))
    clustered = quality.duplicate_clusters(items, threshold=0.85)
    duplicates = sum(1 for i in range(len(valid)) if -(i + 1) in clustered)
    counts["rejected_duplicate"], counts["written"] = duplicates, len(valid) - duplicates
    return counts


def frontier(conversations, existing, latency: float) -> tuple[float, float, dict]:
    counter, lock = itertools.count(), threading.Lock()

    def reply(body):
        with lock:
            n = next(counter)
        time.sleep(latency)
        user = (
            f"Ticket {n}: the {['billing', 'login', 'search', 'upload'][n % 4]} service returns errors for region {n}."
        )
        answer = f"SEVERITY: P1\nIMPACT: customers in region {n} blocked\nACTION: page the on-call for service {n}"
        return (
            json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}),
            400,
            60,
        )

    with OpenAIServer(reply) as server:
        client = harness.openai_client(server.url, "")
        started = time.perf_counter()
        replies = harness.api_replies(client, "stand-in", conversations, max_tokens=512)
        asked = time.perf_counter() - started
        counts = check(replies, existing)
        total = time.perf_counter() - started
    return len(conversations) / asked, len(conversations) / total, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=300)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    rows = demo.generate()
    conversations, seeds = prompts(rows, args.count)
    existing = [row["messages"] for row in rows if row.get("label") == "P1"]
    print(f"{args.count} candidates of P1, {len(existing)} P1 examples to check near duplicates against")
    for latency in (0.0, args.latency_ms / 1000):
        asked, overall, counts = frontier(conversations, existing, latency)
        print(
            f"frontier stand-in, {latency * 1000:.0f} ms a reply: {asked:.1f} candidates/s asked, {overall:.1f}/s with "
            f"the checks; {counts}"
        )
    if args.skip_local:
        return
    print("building tiny-local (cached after the first run) ...", flush=True)
    train = rows[:640]
    base = str(
        tiny_local.build(tiny_local.corpus_documents(r["messages"] for r in train), ROOT / "bench" / "out" / "models")
    )
    for tokens in (128, 512):
        harness.local_answers(base, conversations[:2], max_new_tokens=8, latency_sample=0)  # warm up
        started = time.perf_counter()
        out = harness.local_answers(base, conversations, batch_size=32, max_new_tokens=tokens, latency_sample=0)
        asked = time.perf_counter() - started
        counts = check(out.answers, existing)
        print(
            f"tiny-local (CPU), batch 32, {tokens} new tokens: {len(conversations) / asked:.2f} candidates/s; {counts}"
        )


if __name__ == "__main__":
    main()
