"""`tiny-local`: a small Llama-architecture model with its own tokenizer, built here because nothing can be
downloaded on a laptop or in CI. On real hardware any Hugging Face id or local folder is used the same way.

The tokenizer is a byte-level BPE trained on the corpus; the chat template wraps each assistant turn in
`{% generation %}` markers, so that `apply_chat_template(..., return_assistant_tokens_mask=True)` returns exactly
the reply (and its end-of-turn token) as the supervised part. The model is pretrained for a short while on plain
text, every message's content as its own document ended by the end-of-turn token, so that it has seen every token
its answers use (LoRA on attention alone cannot make unseen tokens likely), but never the mapping from a ticket to
its answer: that is what the fine-tune must learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

NAME = "tiny-local"  # the value of `base_model` that asks for this model
SPECIAL_TOKENS = ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
END = "<|end|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}\n"
    "{% else %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# A little general text, so that the model is not only the project's vocabulary.
GENERIC = [
    "The quick brown fox jumps over the lazy dog.",
    "Please describe the problem, the steps to reproduce it, and what you expected to happen.",
    "Thank you for your patience while we look into this.",
    "Our team will get back to you within one business day.",
    "Severity describes how badly the problem hurts the business; priority describes how soon we act.",
    "Production incidents are escalated to the engineer on call.",
]


@dataclass(frozen=True)
class TinyConfig:
    """Size and pretraining of the tiny model (1.3M parameters with the defaults)."""

    vocab_size: int = 2048
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    pretrain_steps: int = 600
    batch_size: int = 16
    block_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0


def corpus_documents(messages_lists: Iterable[list[dict]]) -> list[str]:
    """Plain-text documents: every message's content on its own, never a conversation."""
    documents = list(GENERIC)
    for messages in messages_lists:
        documents.extend(message["content"] for message in messages)
    return documents


def build(
    documents: list[str],
    cache_dir: Path,
    config: TinyConfig = TinyConfig(),
    on_log: Callable[[dict], None] | None = None,
) -> Path:
    """Build (or reuse from the cache) the tokenizer and pretrained model; returns the model folder."""
    key = hashlib.sha256(json.dumps([asdict(config), sorted(set(documents))]).encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"tiny-local-{key}"
    if (target / "COMPLETE").exists():
        return target
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    random.seed(config.seed)
    torch.manual_seed(config.seed)
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(documents, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=END, pad_token="<|pad|>", bos_token=None)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = config.max_position_embeddings

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            num_key_value_heads=config.heads,
            max_position_embeddings=config.max_position_embeddings,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
    )
    # One stream of documents, each ended by the end-of-turn token, cut into blocks.
    end_id = tokenizer.convert_tokens_to_ids(END)
    stream: list[int] = []
    order = list(documents)
    random.shuffle(order)
    for document in order:
        stream.extend(tokenizer(document, add_special_tokens=False)["input_ids"])
        stream.append(end_id)
    blocks = torch.tensor(stream[: len(stream) // config.block_size * config.block_size]).view(-1, config.block_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / config.pretrain_steps))
    )
    model.train()
    generator = torch.Generator().manual_seed(config.seed)
    for step in range(config.pretrain_steps):
        batch = blocks[torch.randint(len(blocks), (config.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if on_log and (step % 50 == 0 or step == config.pretrain_steps - 1):
            on_log({"phase": "pretrain", "step": step + 1, "total": config.pretrain_steps, "loss": loss.item()})
    partial = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "COMPLETE").write_text("ok\n")
    if not target.exists():
        partial.rename(target)  # another process may have built the same model meanwhile: keep theirs
    return target
