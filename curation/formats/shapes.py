"""The chat formats people have (OpenAI, ShareGPT, Alpaca, prompt/completion): detected, normalised, validated."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from .examples import (
    _DECODE_POSITION,
    InvalidExample,
    Limits,
    LineError,
    ParsedExample,
    content_hash,
    label_clean,
    messages_dump,
    metadata_clean,
    tags_clean,
    validate_messages,
)
from .mapping import ColumnMapping, example_from_row, mapping_hint

FORMATS = ("auto", "openai", "sharegpt", "alpaca", "prompt_completion")
# The file formats that `?format=` may also name (their rows are read as `auto`, or through a mapping).
FILE_FORMATS = ("csv", "parquet")
# Keys every format may carry beside its own: the label, tags, free metadata and an external id (kept in metadata).
COMMON_KEYS = frozenset({"label", "tags", "metadata", "id"})
FORMAT_KEYS = {
    "openai": frozenset({"messages"}) | COMMON_KEYS,
    "sharegpt": frozenset({"conversations", "system"}) | COMMON_KEYS,
    "alpaca": frozenset({"instruction", "input", "output", "system"}) | COMMON_KEYS,
    "prompt_completion": frozenset({"prompt", "completion", "system"}) | COMMON_KEYS,
}
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def _text(obj: dict, key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidExample("content_not_string", f"`{key}` must be a string.")
    return value


def detect_format(obj: dict) -> str:
    if "messages" in obj:
        return "openai"
    if "conversations" in obj:
        return "sharegpt"
    if "instruction" in obj:
        return "alpaca"
    if "prompt" in obj:
        return "prompt_completion"
    raise InvalidExample(
        "missing_messages",
        "no `messages` key (nor ShareGPT `conversations`, Alpaca `instruction` or `prompt`)." + mapping_hint(obj),
    )


def _messages_from(obj: dict, fmt: str) -> Any:
    """Turn one object of the given format into an OpenAI `messages` list (not yet validated)."""
    if fmt == "openai":
        if "messages" not in obj:
            raise InvalidExample("missing_messages", "no `messages` key.")
        return obj["messages"]
    system = _text(obj, "system", required=False)
    head = [{"role": "system", "content": system}] if system else []
    if fmt == "sharegpt":
        turns = obj.get("conversations")
        if not isinstance(turns, list):
            raise InvalidExample("messages_not_list", "`conversations` must be a list of {from, value} objects.")
        messages = list(head)
        for number, turn in enumerate(turns, start=1):
            if not isinstance(turn, dict):
                raise InvalidExample("message_not_object", f"turn {number} is not an object.")
            if "from" not in turn:
                raise InvalidExample("missing_role", f"turn {number} has no `from`.")
            if "value" not in turn:
                raise InvalidExample("missing_content", f"turn {number} has no `value`.")
            role = SHAREGPT_ROLES.get(turn["from"]) if isinstance(turn["from"], str) else None
            if role is None:
                raise InvalidExample(
                    "unknown_role", f"turn {number} is from {turn['from']!r}; allowed: system, human, gpt."
                )
            messages.append({"role": role, "content": turn["value"]})
        return messages
    if fmt == "alpaca":
        instruction = _text(obj, "instruction")
        extra = _text(obj, "input", required=False)
        if "output" not in obj:
            raise InvalidExample("no_assistant_message", "no `output` to learn from.")
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return [*head, {"role": "user", "content": user}, {"role": "assistant", "content": obj["output"]}]
    if fmt == "prompt_completion":
        if "completion" not in obj:
            raise InvalidExample("no_assistant_message", "no `completion` to learn from.")
        prompt, completion = obj.get("prompt"), obj["completion"]
        # TRL's conversational prompt-completion: both sides are message lists.
        prompt_turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        completion_turns = (
            completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        )
        return [*head, *prompt_turns, *completion_turns]
    raise InvalidExample("unknown_format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def example_from_object(obj: Any, line: int, *, fmt: str, labels: frozenset[str], limits: Limits) -> ParsedExample:
    """Validate one decoded JSON value and normalise it; raises InvalidExample."""
    if not isinstance(obj, dict):
        raise InvalidExample("not_an_object", f"expected a JSON object, got {type(obj).__name__}.")
    fmt = detect_format(obj) if fmt == "auto" else fmt
    allowed = FORMAT_KEYS.get(fmt)
    if allowed is None:
        raise InvalidExample("unknown_format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if not obj.keys() <= allowed:
        unknown = sorted(set(obj) - allowed)
        hint = " Put them inside `metadata` to keep them." if fmt in ("openai", "sharegpt") else mapping_hint(obj)
        raise InvalidExample(
            "unknown_key",
            f"unknown key(s) {', '.join(unknown)}; allowed for {fmt}: {', '.join(sorted(allowed))}.{hint}",
        )
    messages = validate_messages(_messages_from(obj, fmt), max_tokens=limits.max_tokens)
    metadata = metadata_clean(obj.get("metadata"), limits)
    if "label" in metadata or "tags" in metadata:
        metadata = dict(metadata)
    label = label_clean(obj["label"] if "label" in obj else metadata.pop("label", None), labels)
    tags = tags_clean(obj["tags"] if "tags" in obj else metadata.pop("tags", None))
    metadata.pop("label", None)
    metadata.pop("tags", None)
    if "id" in obj:
        if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
            raise InvalidExample("invalid_id", "`id` must be a string or an integer.")
        metadata = {**metadata, "id": obj["id"]}
    messages_json = messages_dump(messages)
    return ParsedExample(line, messages, messages_json, content_hash(messages_json), label, tags, metadata)


def parse_line(
    raw: bytes,
    line: int,
    *,
    fmt: str,
    labels: frozenset[str],
    limits: Limits,
    mapping: ColumnMapping | None = None,
) -> ParsedExample | LineError:
    """Decode and validate one JSONL line."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return _decode_error(raw, line, error)
    return parse_object(obj, line, fmt=fmt, labels=labels, limits=limits, mapping=mapping)


def parse_object(
    obj: Any, line: int, *, fmt: str, labels: frozenset[str], limits: Limits, mapping: ColumnMapping | None = None
) -> ParsedExample | LineError:
    """Validate one decoded row: through the mapping when there is one, else in the given (or detected) format."""
    try:
        if mapping is not None:
            return example_from_row(obj, line, mapping=mapping, labels=labels, limits=limits)
        return example_from_object(obj, line, fmt=fmt, labels=labels, limits=limits)
    except InvalidExample as error:
        return LineError(line, error.code, error.message)


def _decode_error(raw: bytes, line: int, error: orjson.JSONDecodeError) -> LineError:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return LineError(line, "invalid_utf8", f"not valid UTF-8 at byte {bad.start + 1} of the line.")
    text = str(error)
    if "depth limit" in text or "recursion" in text.lower():
        return LineError(line, "too_deep", "JSON nested too deeply.")
    match = _DECODE_POSITION.search(text)
    where = f" at column {match.group(1)}" if match else ""
    reason = _DECODE_POSITION.sub("", text)
    return LineError(line, "invalid_json", f"not valid JSON{where}: {reason}.")


# A row is (line, decoded object) or the LineError that stopped it from being decoded.
Row = tuple[int, Any] | LineError


def parse_rows(
    rows: Iterable[Row],
    *,
    fmt: str,
    labels: Iterable[str],
    limits: Limits,
    mapping: ColumnMapping | None = None,
) -> Iterator[ParsedExample | LineError]:
    """Validate decoded rows: one result per row."""
    label_set = frozenset(labels)
    for row in rows:
        if isinstance(row, LineError):
            yield row
        else:
            yield parse_object(row[1], row[0], fmt=fmt, labels=label_set, limits=limits, mapping=mapping)
