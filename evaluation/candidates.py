"""Generated candidates: the prompt that asks a model for one new example of a label, written from seed examples of
that label, and the reading of its reply. No Django: plain data in, plain data out.

The model sees the seeds as JSON lines in the project's chat format (their system message left out: the project's
own is put back on the candidate) and replies with one JSON object. A reply that is not such an object is a
rejected candidate with its reason (`CandidateError`), never a crash.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence

Messages = list[dict]

INSTRUCTION = """You write new training examples for a fine-tuning dataset.
{task}Each example is a conversation in JSON:
{{"messages": [{{"role": "user", "content": "..."}}, {{"role": "assistant", "content": "..."}}]}}.
The assistant's answer is what the fine-tuned model must learn to say{format}.
Write ONE new example whose correct label is {label}: a new situation in the user's turn, not a paraphrase of the
examples shown, and the answer an expert would give to it.
Reply with the JSON object only, on one line."""

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


class CandidateError(ValueError):
    """Why a model's reply is not a usable example (shown in the job's report)."""


def instruction(*, label: str, task_description: str = "", format_hint: str = "") -> str:
    """The system message of a generation prompt: what to write, for which label, in which format."""
    task = f"The task: {task_description.strip()}\n" if task_description.strip() else ""
    form = f", in this format: {format_hint}" if format_hint else ""
    return INSTRUCTION.format(task=task, format=form, label=label)


def format_hint(output_format: dict | None, max_chars: int = 600) -> str:
    """The project's output format in words for the prompt: the regex or the JSON schema (cut to max_chars)."""
    spec = output_format or {}
    if spec.get("kind") == "regex":
        text = f"the whole answer matches the regular expression {spec.get('pattern', '')}"
    elif spec.get("kind") == "json_schema":
        text = f"the answer is JSON valid against this schema: {json.dumps(spec.get('schema', {}))}"
    else:
        return ""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def seed_line(messages: Messages) -> str:
    """A seed as the model sees it: its turns without the system message, as one JSON line."""
    turns = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
    return json.dumps({"messages": turns}, ensure_ascii=False)


def generation_messages(*, system: str, label: str, seeds: Sequence[Messages]) -> Messages:
    """The conversation that asks for one candidate: the instruction, then the seeds and the request."""
    shown = "\n".join(seed_line(seed) for seed in seeds)
    request = f"Examples of label {label}:\n{shown}\n\nWrite one new example of label {label}."
    return [{"role": "system", "content": system}, {"role": "user", "content": request}]


def seed_choices(pool: Sequence[int], *, count: int, k: int, seed: int) -> list[list[int]]:
    """The seed ids of each of `count` candidates: k of the pool each, drawn without replacement within a candidate
    and spread over the pool (each prompt differs, so that even a greedy local model writes different candidates).
    Deterministic for `seed`."""
    pool = list(pool)
    rng = random.Random(seed)
    k = min(k, len(pool))
    return [sorted(rng.sample(pool, k)) for _ in range(count)] if k else [[] for _ in range(count)]


def parse_candidate(reply: str, *, system_prompt: str = "") -> Messages:
    """The example a reply holds, as chat messages (the project's system prompt first when it has one).

    Accepts the JSON object alone, in a code fence, or inside a sentence; {"messages": [...]} or {"user": ...,
    "assistant": ...}. Raises CandidateError saying what is wrong; the full check of the messages (roles, contents,
    sizes) is the import's (curation.formats), the answer's format the project's."""
    text = _FENCE.sub("", (reply or "").strip())
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise CandidateError("the reply holds no JSON object.")
    try:
        obj = json.loads(text[start : end + 1])
    except ValueError as error:
        raise CandidateError(f"the reply is not valid JSON ({error}).") from None
    if not isinstance(obj, dict):
        raise CandidateError("the reply's JSON is not an object.")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise CandidateError("`messages` is not a list of objects.")
        messages = [{"role": m.get("role"), "content": m.get("content")} for m in messages]
    elif "user" in obj and "assistant" in obj:
        messages = [{"role": "user", "content": obj["user"]}, {"role": "assistant", "content": obj["assistant"]}]
    else:
        raise CandidateError("the object has no `messages` (nor `user` and `assistant`).")
    messages = [m for m in messages if m["role"] != "system"]
    if not messages or messages[-1]["role"] != "assistant":
        raise CandidateError("the example does not end with the assistant's answer.")
    if system_prompt:
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages
