"""Answer one conversation with a run's weights, the tokens streamed to a callback as they come: the "try the model"
chat. No Django inside.

    answer(model, tokenizer, messages, max_new_tokens, on_text, max_prompt_tokens) -> Reply

A worker keeps the models it loaded (`cached`), keyed by what they were loaded from, so the second message to the
same run does not pay the load again. A LoRA model answers for its base too: `base_of(model)` switches the adapter
off for the length of one answer instead of loading the base a second time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import SFTConfig

SMALL_MODEL = 50_000_000  # parameters: below it, a CPU answers on one thread (see `_threads`)
CACHE_SIZE = 2  # models kept per worker process: a run's fine-tune, and the base of a full fine-tune
_cache: OrderedDict[tuple, tuple] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass
class Reply:
    """One system's answer and how long it took: to the first new token, and to the whole answer (milliseconds)."""

    content: str
    first_token_ms: float | None
    latency_ms: float
    new_tokens: int
    prompt_tokens: int
    prompt_truncated: bool


def cached(key: tuple, load: Callable[[], tuple]) -> tuple:
    """`load()`'s (model, tokenizer), kept for this process under `key`; the least recently used beyond CACHE_SIZE
    is dropped."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        loaded = load()
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return loaded


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def load_checkpoint(config: SFTConfig, checkpoint: Path):
    """The run's model as a complete checkpoint (`.../checkpoints/step-N`) left it, for inference: the base with a
    fresh LoRA (the run's own r, alpha and targets) and the checkpoint's trainable weights loaded into it (every
    weight for a full fine-tune)."""
    from . import sft

    device, dtype = sft.device_and_dtype()
    model = sft.build_model(config, device, dtype)
    sft._load_trainable(model, Path(checkpoint))  # the recipe's own checkpoint format
    return model.eval(), sft.load_tokenizer(config.base_model)


@contextlib.contextmanager
def base_of(model) -> Iterator:
    """The base model under a LoRA model: its adapter switched off while the block runs."""
    with model.disable_adapter():
        yield model


class _Streamer:
    """transformers' streamer protocol (put / end): decodes the new tokens so far and hands the text to `on_text`;
    the first `put` is the prompt, skipped."""

    def __init__(self, tokenizer, on_token: Callable[[str, int], None]):
        self.tokenizer, self.on_token = tokenizer, on_token
        self.prompt_seen = False
        self.ids: list[int] = []

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        self.on_token(self.tokenizer.decode(self.ids, skip_special_tokens=True), len(self.ids))

    def end(self) -> None:
        pass


@contextlib.contextmanager
def _threads(model, device) -> Iterator:
    """One torch thread while a small model answers on the CPU: its matrices are too small to share out, and on a busy
    machine the threads wait for each other (tiny-local: 3-7 ms a token on one thread, 60-190 ms on two beside other
    work; bench/chat_bench.py). The worker's setting is restored afterwards."""
    import torch

    small = device.type == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL
    before = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(before)


def answer(
    model,
    tokenizer,
    messages: list[dict],
    *,
    max_new_tokens: int = 128,
    on_text: Callable[[str], None] = lambda text: None,
    max_prompt_tokens: int | None = None,
) -> Reply:
    """A greedy answer to `messages` (up to the assistant's turn), streamed to `on_text` token by token; a prompt
    longer than `max_prompt_tokens` keeps its last tokens (the newest turns)."""
    import torch

    device = next(model.parameters()).device
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    truncated = bool(max_prompt_tokens) and ids.shape[1] > max_prompt_tokens
    if truncated:
        ids = ids[:, -max_prompt_tokens:]
    first: list[float] = []
    started = time.perf_counter()

    def on_token(text: str, count: int) -> None:
        if not first:
            first.append((time.perf_counter() - started) * 1000)
        on_text(text.strip())

    streamer = _Streamer(tokenizer, on_token)
    with torch.no_grad(), _threads(model, device):
        output = model.generate(
            input_ids=ids.to(device),
            attention_mask=torch.ones_like(ids).to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            streamer=streamer,
        )
    latency = (time.perf_counter() - started) * 1000
    new = output[0, ids.shape[1] :]
    content = tokenizer.decode(new, skip_special_tokens=True).strip()
    return Reply(content, first[0] if first else None, latency, int(new.shape[0]), int(ids.shape[1]), truncated)
