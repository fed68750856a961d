"""Training speed of the project's recipe against a bare peft + torch loop, in the same run, on `tiny-local`.

Both train the same LoRA (r=16, alpha=32, q/k/v/o) on the same demo examples, batch 16, for the same number of
steps; tokens/s counts the real (unpadded) tokens. Goal: the recipe at least 0.9 of the bare loop. Then the packing
efficiency (real tokens / computed tokens) at block sizes 1024 and 2048; goal >= 0.95.

Run: `.venv/bin/python bench/train_bench.py [--steps N]`.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import demo  # noqa: E402
from training.recipes import sft, tiny_local  # noqa: E402


def bare_loop(base: str, rows: list[dict], steps: int) -> float:
    """The plainest LoRA loop: the ceiling the recipe is measured against. Returns tokens/s."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    tokenizer = sft.load_tokenizer(base)
    encoded = sft.encode(tokenizer, rows, 1024)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(
            r=16,
            lora_alpha=32,
            target_modules=list(sft.DEFAULT_TARGETS),
            lora_dropout=0.1,
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    stream = sft.batches(encoded, 16, tokenizer.pad_token_id, random.Random(0))
    model.train()
    tokens = 0
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(stream)
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - start)


def recipe(base: str, rows: list[dict], steps: int) -> float:
    log = []
    config = sft.SFTConfig(base_model=base, max_steps=steps, batch_size=16, eval_every=10**9, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as out:
        sft.run(config, rows, [], Path(out), on_log=log.append)
    steps_logged = [entry for entry in log if entry["event"] == "step"]
    return sum(entry["tokens"] for entry in steps_logged) / steps_logged[-1]["elapsed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    rows = demo.generate()[:700]
    print("building tiny-local (cached after the first run) ...", flush=True)
    base = str(
        tiny_local.build(tiny_local.corpus_documents(r["messages"] for r in rows), ROOT / "bench" / "out" / "models")
    )
    results = {"bare": [], "recipe": []}
    for _ in range(2):  # interleaved, best of two: these machines are noisy
        results["bare"].append(bare_loop(base, rows, args.steps))
        results["recipe"].append(recipe(base, rows, args.steps))
    bare, ours = max(results["bare"]), max(results["recipe"])
    print(f"bare peft + torch loop: {bare:,.0f} tokens/s")
    print(f"the project's recipe:   {ours:,.0f} tokens/s")
    print(f"ratio: {ours / bare:.2f} (goal >= 0.9)")
    tokenizer = sft.load_tokenizer(base)
    encoded = sft.encode(tokenizer, rows, 1024)
    for block in (1024, 2048):
        _, efficiency = sft.pack(encoded, block, tokenizer.pad_token_id)
        print(f"packing efficiency at {block} tokens: {efficiency:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
