"""Supervised fine-tuning of a causal LM on chat examples: LoRA (the default) or full, with the loss on assistant
tokens only. One documented config, one legible training loop (nanoGPT / torchtune style): no Django inside.

    run(config, train_rows, val_rows, out_dir, on_log, should_stop) -> Result

Checkpoints are written to `<out_dir>/checkpoints/step-N.tmp`, then renamed to `step-N` with a COMPLETE marker
inside, so a run resumes only from a checkpoint that was written whole, and announced to `on_log` (`{"event":
"checkpoint"}`: the worker copies it to the artifact store). The run resumes automatically from the last complete
checkpoint in `out_dir` (the global step continues, not from zero). CUDA and bf16 are used when
present, the CPU and fp32 otherwise.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import SFTConfig  # the run's settings, documented there
from .process import die_with_parent


@dataclass
class Result:
    steps: int
    adapter_dir: Path | None
    model_dir: Path | None
    trainable_params: int
    total_params: int
    last_loss: float | None
    cancelled: bool


def device_and_dtype():
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    return torch.device("cpu"), torch.float32


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode(tokenizer, rows: list[dict], max_seq_length: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per example; labels are -100 everywhere but the assistant's tokens."""
    return encode_counted(tokenizer, rows, max_seq_length)[0]


TRUNCATED_NAMED = 20  # truncated examples named in the report (the count covers them all)


def encode_counted(
    tokenizer, rows: list[dict], max_seq_length: int, chunk: int = 128
) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """`encode`, and what it cut: the examples whose whole sequence (chat template included) was longer than
    `max_seq_length` before truncation, named by their `id` (or their index when rows have none), and how many of
    them lost every answer token and were left out. Rows are tokenized a chunk at a time (the tokenizer uses every
    core)."""
    encoded = []
    truncated: list = []
    dropped = longest = 0
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        out = tokenizer.apply_chat_template(
            [row["messages"] for row in part], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        for offset, (all_ids, all_mask) in enumerate(zip(out["input_ids"], out["assistant_masks"], strict=True)):
            longest = max(longest, len(all_ids))
            ids, mask = all_ids[:max_seq_length], all_mask[:max_seq_length]
            labels = [token if keep else -100 for token, keep in zip(ids, mask, strict=True)]
            kept = any(label != -100 for label in labels)
            if len(all_ids) > max_seq_length:
                truncated.append(part[offset].get("id", start + offset))
                dropped += not kept
            if kept:
                encoded.append((ids, labels))
    report = {
        "examples": len(rows),
        "max_seq_length": max_seq_length,
        "truncated": len(truncated),
        "truncated_ids": truncated[:TRUNCATED_NAMED],
        "dropped": dropped,
        "longest": longest,
    }
    return encoded, report


def pack(encoded: list[tuple[list[int], list[int]]], max_seq_length: int, pad_id: int):
    """Best-fit-decreasing packing of whole examples into blocks (position ids restart at each example), so that
    no example is cut. Returns the blocks and the packing efficiency: real tokens / computed tokens."""
    bins: list[list[tuple[list[int], list[int]]]] = []
    order: list[tuple[int, int]] = []  # (room left, bin index), kept sorted
    for item in sorted(encoded, key=lambda pair: -len(pair[0])):
        size = len(item[0])
        position = bisect.bisect_left(order, (size, -1))
        if position < len(order):
            left, index = order.pop(position)
            bins[index].append(item)
            bisect.insort(order, (left - size, index))
        else:
            bins.append([item])
            bisect.insort(order, (max_seq_length - size, len(bins) - 1))
    blocks = []
    for contents in bins:
        ids = [token for item in contents for token in item[0]]
        labels = [label for item in contents for label in item[1]]
        positions = [position for item in contents for position in range(len(item[0]))]
        blocks.append((ids, labels, positions))
    real = sum(len(ids) for ids, _ in encoded)
    return blocks, real / (len(blocks) * max_seq_length) if blocks else 1.0


def batches(items: list, batch_size: int, pad_id: int, rng: random.Random):
    """Endless shuffled batches, padded to the longest item of each batch."""
    import torch

    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            chosen = [items[i] for i in order[start : start + batch_size]]
            width = max(len(item[0]) for item in chosen)
            ids = torch.full((len(chosen), width), pad_id)
            labels = torch.full((len(chosen), width), -100)
            attention = torch.zeros((len(chosen), width), dtype=torch.long)
            positions = torch.zeros((len(chosen), width), dtype=torch.long)
            for row, item in enumerate(chosen):
                n = len(item[0])
                ids[row, :n] = torch.tensor(item[0])
                labels[row, :n] = torch.tensor(item[1])
                attention[row, :n] = 1
                positions[row, :n] = torch.tensor(item[2]) if len(item) > 2 else torch.arange(n)
            yield {"input_ids": ids, "labels": labels, "attention_mask": attention, "position_ids": positions}


def token_accuracy(logits, labels) -> tuple[int, int]:
    predicted = logits[:, :-1].argmax(-1)
    target = labels[:, 1:]
    keep = target != -100
    return int((predicted[keep] == target[keep]).sum()), int(keep.sum())


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest checkpoint whose COMPLETE marker exists (a half-written one is ignored)."""
    folder = out_dir / "checkpoints"
    if not folder.exists():
        return None
    complete = [p for p in folder.iterdir() if p.name.startswith("step-") and (p / "COMPLETE").exists()]
    complete = [p for p in complete if p.name[5:].isdigit()]
    return max(complete, key=lambda p: int(p.name[5:]), default=None)


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def build_model(config: SFTConfig, device, dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=dtype)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=list(config.lora_targets),
            lora_dropout=config.lora_dropout,
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    elif config.method != "full":
        raise ValueError(f"method must be lora or full, not {config.method!r}")
    return model.to(device)


def run(
    config: SFTConfig,
    train_rows: list[dict],
    val_rows: list[dict],
    out_dir: Path,
    on_log: Callable[[dict], None] = lambda entry: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Result:
    """Train, evaluate on the validation rows now and then, checkpoint, and save the adapter (or full model)."""
    import torch
    from accelerate import Accelerator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    _, dtype = device_and_dtype()
    # One process: a thin wrapper. Under torchrun / accelerate launch: DDP across the processes (NCCL on GPUs, gloo
    # on CPUs); every process draws its own batches, only the first one logs, checkpoints and saves.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device, main, world = accelerator.device, accelerator.is_main_process, accelerator.num_processes
    if not main:
        on_log = lambda entry: None  # noqa: E731
    tokenizer = load_tokenizer(config.base_model)
    pad_id = tokenizer.pad_token_id
    on_log({"event": "build", "stage": f"tokenizing {len(train_rows):,} training examples"})
    train, truncation = encode_counted(tokenizer, train_rows, config.max_seq_length)
    val = encode(tokenizer, val_rows, config.max_seq_length)
    if not train:
        raise ValueError(
            f"no training example has an assistant turn within max_seq_length {config.max_seq_length}: "
            f"{truncation['dropped']:,} of {len(train_rows):,} lost every answer token to truncation (the longest "
            f"has {truncation['longest']:,} tokens)"
        )
    efficiency = None
    if config.packing:
        train, efficiency = pack(train, config.max_seq_length, pad_id)
    model = build_model(config, device, dtype)
    trainable, total = count_parameters(model)
    steps_per_epoch = max(1, len(train) // (config.batch_size * config.gradient_accumulation * world))
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    warmup = max(1, config.warmup_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / max(total_steps, 1))
    )
    step = 0
    resumed = latest_checkpoint(out_dir)
    if resumed is not None:
        state = torch.load(resumed / "state.pt", map_location=device, weights_only=False)
        _load_trainable(model, resumed)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        random.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
    model, optimizer = accelerator.prepare(model, optimizer)
    rng = random.Random(config.seed + step + 1_000_003 * accelerator.process_index)
    stream = batches(train, config.batch_size, pad_id, rng)

    def stop_now() -> bool:
        flag = [bool(should_stop()) if main else False]
        if world > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(flag)
        return flag[0]

    on_log(
        {
            "event": "start",
            "step": step,
            "total": total_steps,
            "trainable_params": trainable,
            "total_params": total,
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "resumed_from": resumed.name if resumed else None,
            "packing_efficiency": efficiency,
            "train_examples": len(train_rows),
            "truncation": truncation,
            "processes": world,
        }
    )
    model.train()
    last_loss = None
    started = time.monotonic()
    cancelled = False
    while step < total_steps:
        if stop_now():
            cancelled = True
            break
        correct = counted = tokens = 0
        loss_sum = 0.0
        for _ in range(config.gradient_accumulation):
            batch = {key: value.to(device) for key, value in next(stream).items()}
            output = model(**batch)
            accelerator.backward(output.loss / config.gradient_accumulation)
            loss_sum += output.loss.item() / config.gradient_accumulation
            right, seen = token_accuracy(output.logits.detach(), batch["labels"])
            correct, counted, tokens = correct + right, counted + seen, tokens + int(batch["attention_mask"].sum())
        accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        last_loss = loss_sum
        entry = {
            "event": "step",
            "step": step,
            "total": total_steps,
            "loss": round(loss_sum, 5),
            "token_accuracy": round(correct / counted, 4) if counted else None,
            "tokens": tokens,
            "learning_rate": schedule.get_last_lr()[0],
            "elapsed": round(time.monotonic() - started, 2),
        }
        if main and val and (step % config.eval_every == 0 or step == total_steps):
            entry.update(evaluate(accelerator.unwrap_model(model), val, config.batch_size, pad_id, device))
        on_log(entry)
        if step % config.checkpoint_every == 0 and step < total_steps:
            if main:
                saved = save_checkpoint(
                    accelerator.unwrap_model(model), optimizer, schedule, step, out_dir, config.keep_checkpoints
                )
                on_log({"event": "checkpoint", "step": step, "name": saved.name})  # the worker stores it
            accelerator.wait_for_everyone()
    adapter_dir = model_dir = None
    if not cancelled:
        final = out_dir / ("adapter" if config.method == "lora" else "model")
        if main:
            accelerator.unwrap_model(model).save_pretrained(final, safe_serialization=True)
            tokenizer.save_pretrained(final)
            (final / "fineline_config.json").write_text(json.dumps(asdict(config), indent=2, default=list))
        accelerator.wait_for_everyone()
        if config.method == "lora":
            adapter_dir = final
        else:
            model_dir = final
        on_log({"event": "done", "step": step, "total": total_steps})
    return Result(step, adapter_dir, model_dir, trainable, total, last_loss, cancelled)


def run_distributed(
    config: SFTConfig,
    train_rows: list[dict],
    val_rows: list[dict],
    out_dir: Path,
    processes: int,
    on_log: Callable[[dict], None] = lambda entry: None,
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.5,
) -> Result:
    """`run` across `processes` processes on this node (one per GPU) under torchrun: the same recipe, DDP. This
    process relays the first process's progress to `on_log` and asks every process to stop when `should_stop`."""
    import os
    import signal
    import subprocess
    import sys

    out_dir = Path(out_dir)
    inputs = out_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train_rows), ("val", val_rows)):
        with (inputs / f"{name}.jsonl").open("w", encoding="utf-8") as sink:
            sink.writelines(json.dumps(row) + "\n" for row in rows)
    for stale in ("events.jsonl", "STOP", "result.json"):
        (out_dir / stale).unlink(missing_ok=True)
    spec = {
        "config": asdict(config),
        "train": str(inputs / "train.jsonl"),
        "val": str(inputs / "val.jsonl"),
        "out_dir": str(out_dir),
    }
    (inputs / "spec.json").write_text(json.dumps(spec, default=list))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "training.recipes.launch", str(inputs / "spec.json"),
    ]  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    log_file = (out_dir / "torchrun.log").open("wb")
    child = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                             preexec_fn=die_with_parent)  # fmt: skip
    events, offset, asked = out_dir / "events.jsonl", 0, False
    try:
        while True:
            finished = child.poll() is not None
            if events.exists():
                with events.open("rb") as source:
                    source.seek(offset)
                    for line in source:
                        if not line.endswith(b"\n"):
                            break  # half-written: read it next time
                        offset += len(line)
                        on_log(json.loads(line))
            if finished:
                break
            if not asked and should_stop():
                (out_dir / "STOP").touch()
                asked = True
            time.sleep(poll_seconds)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
        log_file.close()
    if child.returncode != 0 or not (out_dir / "result.json").exists():
        tail = (out_dir / "torchrun.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the {processes}-process run failed (exit {child.returncode}):\n{tail}")
    fields = json.loads((out_dir / "result.json").read_text())
    for key in ("adapter_dir", "model_dir"):
        fields[key] = Path(fields[key]) if fields[key] else None
    return Result(**fields)


def evaluate(model, items, batch_size: int, pad_id: int, device) -> dict:
    import torch

    model.eval()
    loss_sum = weight = correct = counted = 0
    stream = batches(items, min(batch_size, len(items)), pad_id, random.Random(0))
    with torch.no_grad():
        for _ in range(max(1, len(items) // min(batch_size, len(items)))):
            batch = {key: value.to(device) for key, value in next(stream).items()}
            output = model(**batch)
            n = int((batch["labels"] != -100).sum())
            loss_sum, weight = loss_sum + output.loss.item() * n, weight + n
            right, seen = token_accuracy(output.logits, batch["labels"])
            correct, counted = correct + right, counted + seen
    model.train()
    return {
        "val_loss": round(loss_sum / weight, 5) if weight else None,
        "val_token_accuracy": round(correct / counted, 4) if counted else None,
    }


def _trainable_state(model) -> dict:
    return {name: tensor.detach().cpu() for name, tensor in model.named_parameters() if tensor.requires_grad}


def _load_trainable(model, folder: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(folder / "trainable.safetensors"))
    missing = [name for name, tensor in model.named_parameters() if tensor.requires_grad and name not in weights]
    if missing:
        raise ValueError(f"checkpoint {folder} lacks {len(missing)} trainable tensors")
    model.load_state_dict(weights, strict=False)


def save_checkpoint(model, optimizer, schedule, step: int, out_dir: Path, keep: int) -> Path:
    """Write step-N.tmp, mark it COMPLETE, rename it to step-N; keep the newest `keep`."""
    import torch
    from safetensors.torch import save_file

    folder = out_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"step-{step}.tmp"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    save_file(_trainable_state(model), str(partial / "trainable.safetensors"))
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "python_rng": random.getstate(),
        "torch_rng": torch.get_rng_state(),
    }
    torch.save(state, partial / "state.pt")
    (partial / "COMPLETE").write_text(f"{step}\n")
    final = folder / f"step-{step}"
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    complete = sorted(
        (p for p in folder.iterdir() if p.name[5:].isdigit() and (p / "COMPLETE").exists()),
        key=lambda p: int(p.name[5:]),
    )
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_for_inference(base_model: str, adapter_dir: Path | None = None, merge: bool = False):
    """The base model, with the adapter on top when given (merged into the weights when `merge`)."""
    from transformers import AutoModelForCausalLM

    device, dtype = device_and_dtype()
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
        if merge:
            model = model.merge_and_unload()
    tokenizer = load_tokenizer(base_model)
    return model.to(device).eval(), tokenizer


def merge_adapter(adapter_dir: Path, out_dir: Path, base_model: str | None = None) -> Path:
    """Merge a LoRA adapter into its base model's weights and save the result (safetensors and tokenizer) to
    `out_dir`, written to a temporary folder first and renamed, so that a half-written merge is never served."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    base_model = base_model or json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    model, tokenizer = load_for_inference(base_model, adapter_dir, merge=True)
    partial = out_dir.with_name(out_dir.name + ".tmp")
    if partial.exists():
        shutil.rmtree(partial)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return out_dir


def generate(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 96, batch_size: int = 50):
    """Greedy answers to each conversation (its messages up to the assistant's turn), batched with left padding. A
    prompt that would leave no room for `max_new_tokens` within the model's positions keeps its last tokens (the
    newest turns), as the chat does, rather than run past what the model was built for."""
    import torch

    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    positions = getattr(model.config, "max_position_embeddings", None)
    fit = {}
    if positions and positions > max_new_tokens:
        tokenizer.truncation_side = "left"
        fit = {"truncation": True, "max_length": positions - max_new_tokens}
    answers = []
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chunk]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False, **fit).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        answers.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return [answer.strip() for answer in answers]
