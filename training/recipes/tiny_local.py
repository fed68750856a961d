"""`tiny-local`: a small Llama-architecture model with its own tokenizer, built here because nothing can be
downloaded on a laptop or in CI. On real hardware any Hugging Face id or local folder is used the same way.

The tokenizer is a byte-level BPE trained on the corpus; the chat template wraps each assistant turn in
`{% generation %}` markers, so that `apply_chat_template(..., return_assistant_tokens_mask=True)` returns exactly
the reply (and its end-of-turn token) as the supervised part. The model is pretrained for a short while on plain
text, every message's content as its own document ended by the end-of-turn token, so that it has seen every token
its answers use (LoRA on attention alone cannot make unseen tokens likely), but never the mapping from a ticket to
its answer: that is what the fine-tune must learn.

The build takes the same time on 300 rows or 300,000: the corpus is bounded (`corpus_documents`: a deterministic
sample within CORPUS_CHARS, the answers first, long contexts cut) and so are the pretraining steps. It reports each
stage through `on_log` (`{"event": "build", "stage": ..., "step": ..., "total": ...}`), so that a run shows what it
is doing before its first training step.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import re
import time
from collections import Counter
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


# The pretraining corpus's bound, in characters: the tokenizer's training, the corpus's tokenization and the cache
# key take the same time past it. 600 steps of 16 x 128 tokens read about 1.2M tokens (some 3.5M characters), so a
# corpus this size is still read a couple of times over. The demo's whole corpus (about 0.5M) is below it.
CORPUS_CHARS = 1_500_000
# A long context adds its first characters only: enough of its vocabulary, without letting a few long documents
# crowd out the answers.
DOCUMENT_CHARS = 2_000
# Share of the bound kept for the answers before any other message: the base must have seen every token the answers
# use (LoRA on attention alone cannot make an unseen token likely).
ANSWER_SHARE = 0.5
# A sample cannot hold every answer of a large set, yet the base must see every token of them: the words of the answers
# left out (byte-level pre-tokens, counted up to ANSWER_WORDS_KEPT distinct ones) are added as one document, within
# up to VOCABULARY_SHARE of the bound, the most frequent first. BPE encodes each pre-token on its own, so a word seen
# in the corpus is a sequence of tokens seen in pretraining.
VOCABULARY_SHARE = 0.1
ANSWER_WORDS_KEPT = 200_000
# The byte-level pre-tokenizer's split (GPT-2's pattern), in the standard library's terms.
PRE_TOKENS = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
PROGRESS_EVERY = 25  # pretraining steps between two progress reports


def corpus_documents(
    messages_lists: Iterable[list[dict]], max_chars: int = CORPUS_CHARS, document_chars: int = DOCUMENT_CHARS
) -> list[str]:
    """Plain-text documents: every message's content on its own, never a conversation.

    A corpus within `max_chars` is taken whole, as it comes. A larger one is sampled: each distinct content once, cut
    to its first `document_chars` (at a space), chosen by a hash of its text (the same sample whatever the order of
    the rows), the answers first (up to ANSWER_SHARE of the bound, more if the other messages leave room), then the
    other messages, until `max_chars`; then the words of the answers left out, so that the base sees every token
    the answers use (VOCABULARY_SHARE). Memory stays within about twice the bound, whatever the number of rows."""
    documents = list(GENERIC)
    budget = max_chars - sum(map(len, documents))
    whole: list[tuple[bool, str]] = []
    size = 0
    sample: _Sample | None = None
    for messages in messages_lists:
        for message in messages:
            answer, content = message["role"] == "assistant", message["content"]
            if sample is not None:
                sample.add(answer, content)
                continue
            whole.append((answer, content))
            size += len(content)
            if size > budget:
                sample = _Sample(budget, document_chars)
                for item in whole:
                    sample.add(*item)
                whole = []
    if sample is None:
        return documents + [content for _, content in whole]
    return documents + sample.documents()


class _Sample:
    """The documents with the smallest hashes whose characters fit the bound, answers and other messages apart."""

    def __init__(self, budget: int, document_chars: int):
        self.budget, self.document_chars = budget, document_chars
        # max-heaps of (-hash, text) and their sizes in characters; a text is kept at most once
        self.heaps: dict[bool, list[tuple[int, str]]] = {True: [], False: []}
        self.sizes = {True: 0, False: 0}
        self.kept: set[int] = set()
        self.answer_words: Counter[str] = Counter()

    def add(self, answer: bool, text: str) -> None:
        if answer:
            words = PRE_TOKENS.findall(text)
            if len(self.answer_words) < ANSWER_WORDS_KEPT:
                self.answer_words.update(words)
            else:
                self.answer_words.update(word for word in words if word in self.answer_words)
        if len(text) > self.document_chars:
            cut = text[: self.document_chars]
            text = cut.rsplit(" ", 1)[0] if " " in cut else cut
        key = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        heap = self.heaps[answer]
        if key in self.kept or (self.sizes[answer] >= self.budget and heap and key > -heap[0][0]):
            return
        heapq.heappush(heap, (-key, text))
        self.kept.add(key)
        self.sizes[answer] += len(text)
        while self.sizes[answer] - len(heap[0][1]) >= self.budget:  # the rest still fills the bound: drop the largest
            dropped_key, dropped = heapq.heappop(heap)
            self.kept.discard(-dropped_key)
            self.sizes[answer] -= len(dropped)

    def documents(self) -> list[str]:
        # room for the words of the answers the sample leaves out (at most every distinct word, once, a line each)
        reserve = min(int(self.budget * VOCABULARY_SHARE), sum(len(word) + 1 for word in self.answer_words))
        budget = self.budget - reserve
        queues = {kind: iter(sorted(heap, reverse=True)) for kind, heap in self.heaps.items()}  # smallest hash first
        waiting: dict[bool, str | None] = {kind: next(queue, (0, None))[1] for kind, queue in queues.items()}
        chosen, size = [], 0
        for answer, bound in ((True, budget * ANSWER_SHARE), (False, budget), (True, budget)):
            while waiting[answer] is not None and size + len(waiting[answer]) <= bound:
                chosen.append(waiting[answer])
                size += len(waiting[answer])
                waiting[answer] = next(queues[answer], (0, None))[1]
        seen = {word for document in chosen for word in PRE_TOKENS.findall(document)}
        missing, room = [], reserve
        for word, _ in self.answer_words.most_common():
            if word not in seen and len(word) + 1 <= room:
                missing.append(word)
                room -= len(word) + 1
        # one word a line: the newline keeps each word's own split (and its leading space) when it is tokenized again
        return chosen + (["\n".join(missing)] if missing else [])


def build_name(documents: list[str], config: TinyConfig = TinyConfig()) -> str:
    """The build's folder name, `tiny-local-<16 hex>`: the same documents and settings give the same name (and model),
    so a node finds another node's build in the artifact store instead of building it again."""
    key = hashlib.sha256(json.dumps([asdict(config), sorted(set(documents))]).encode()).hexdigest()[:16]
    return f"{NAME}-{key}"


def build(
    documents: list[str],
    cache_dir: Path,
    config: TinyConfig = TinyConfig(),
    on_log: Callable[[dict], None] | None = None,
) -> Path:
    """Build (or reuse from the cache) the tokenizer and pretrained model; returns the model folder.

    Each stage is reported to `on_log` as `{"event": "build", "stage": ..., "step": done, "total": of}`; the
    pretraining every PROGRESS_EVERY steps, with its loss."""
    report = on_log or (lambda entry: None)
    started = time.monotonic()

    def stage(name: str, step: int = 0, total: int = 0, **extra) -> None:
        elapsed = round(time.monotonic() - started, 2)
        report({"event": "build", "stage": name, "step": step, "total": total, "elapsed": elapsed, **extra})

    target = Path(cache_dir) / build_name(documents, config)
    if (target / "COMPLETE").exists():
        stage("base model found in the cache")
        return target
    stage("building the tokenizer", documents=len(documents), characters=sum(map(len, documents)))
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
        show_progress=False,
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
    stage("tokenizing the corpus")
    end_id = tokenizer.convert_tokens_to_ids(END)
    stream: list[int] = []
    order = list(documents)
    random.shuffle(order)
    for start in range(0, len(order), 1000):  # in batches: the tokenizer uses every core
        for ids in raw.encode_batch(order[start : start + 1000], add_special_tokens=False):
            stream.extend(ids.ids)
            stream.append(end_id)
    blocks = torch.tensor(stream[: len(stream) // config.block_size * config.block_size]).view(-1, config.block_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / config.pretrain_steps))
    )
    model.train()
    generator = torch.Generator().manual_seed(config.seed)
    stage("pretraining the base", 0, config.pretrain_steps, tokens=len(stream))
    for step in range(config.pretrain_steps):
        batch = blocks[torch.randint(len(blocks), (config.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % PROGRESS_EVERY == 0 or step + 1 == config.pretrain_steps:
            stage("pretraining the base", step + 1, config.pretrain_steps, loss=round(loss.item(), 4))
    stage("saving the base")
    partial = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "COMPLETE").write_text("ok\n")
    if not target.exists():
        partial.rename(target)  # another process may have built the same model meanwhile: keep theirs
    return target
