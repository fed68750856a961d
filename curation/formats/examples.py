"""One example checked and normalised: its limits, its result or error, and the rules every reader and write shares."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

ROLES = frozenset({"system", "user", "assistant"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})
MAX_LABEL_LENGTH = 100
MAX_TAG_LENGTH = 50
# Token counts here are an estimate (UTF-8 bytes / 4, the usual rule of thumb for BPE tokenizers); the exact count
# with the base model's tokenizer comes with the dataset statistics.
BYTES_PER_TOKEN = 4
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-line limits of an import."""

    max_line_bytes: int = 2 * 1024 * 1024
    max_tokens: int = 32768
    max_depth: int = 32


@dataclass(slots=True)
class ParsedExample:
    """A valid example, normalised to the OpenAI chat format."""

    line: int
    messages: list[dict[str, Any]]
    messages_json: bytes
    content_hash: str
    label: str
    tags: list[str]
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one input line (1-based) was refused."""

    line: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": printable(self.message)}


def printable(text: str) -> str:
    """Text PostgreSQL can store and JSON can carry: a NUL or a lone surrogate quoted from the input (a key's name in
    a message) is written as its escape instead."""
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


class InvalidExample(ValueError):
    """An example that breaks a rule; `code` is stable and machine-readable, `message` says what to fix."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class BodyTooLarge(Exception):
    """The input grew past the configured maximum while it was being read."""


def content_hash(messages_json: bytes) -> str:
    """The identity of an example: SHA-256 of its messages serialised with sorted keys."""
    return hashlib.sha256(messages_json).hexdigest()


def messages_dump(messages: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)


def validate_messages(messages: Any, *, max_tokens: int) -> list[dict[str, Any]]:
    """Check a `messages` list and return it; raise InvalidExample naming the first problem."""
    if not isinstance(messages, list):
        raise InvalidExample("messages_not_list", "`messages` must be a list of {role, content} objects.")
    if not messages:
        raise InvalidExample("empty_messages", "`messages` is empty.")
    has_assistant = False
    content_bytes = 0
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise InvalidExample("message_not_object", f"message {number} is not an object.")
        if "role" not in message:
            raise InvalidExample("missing_role", f"message {number} has no `role`.")
        if "content" not in message:
            raise InvalidExample("missing_content", f"message {number} has no `content`.")
        if len(message) > 2:
            unknown = sorted(set(message) - MESSAGE_KEYS)
            if unknown:
                raise InvalidExample(
                    "unknown_key",
                    f"message {number} has unknown key(s) {', '.join(unknown)};"
                    f" allowed: {', '.join(sorted(MESSAGE_KEYS))}.",
                )
            if not isinstance(message.get("name", ""), str):
                raise InvalidExample("invalid_name", f"message {number}: `name` must be a string.")
            if message.get("weight", 1) not in (0, 1):
                raise InvalidExample("invalid_weight", f"message {number}: `weight` must be 0 or 1.")
        role = message["role"]
        if role not in ROLES:
            raise InvalidExample(
                "unknown_role", f"message {number} has role {role!r}; allowed: assistant, system, user."
            )
        content = message["content"]
        if not isinstance(content, str):
            raise InvalidExample("content_not_string", f"message {number} ({role}): `content` must be a string.")
        if not content or content.isspace():
            raise InvalidExample("empty_content", f"message {number} ({role}) has empty content.")
        if "\x00" in content:
            raise InvalidExample("null_character", f"message {number} ({role}) contains a NUL character (\\u0000).")
        if role == "assistant":
            has_assistant = True
        content_bytes += len(content) if content.isascii() else len(content.encode("utf-8"))
    if not has_assistant:
        raise InvalidExample("no_assistant_message", "there is no assistant message to learn from.")
    tokens = -(-content_bytes // BYTES_PER_TOKEN)
    if tokens > max_tokens:
        raise InvalidExample(
            "too_many_tokens", f"about {tokens} tokens (estimated as UTF-8 bytes / 4), over the limit of {max_tokens}."
        )
    return messages


def has_nul(value: Any) -> bool:
    """Whether a NUL character hides in any string or key of a JSON value (PostgreSQL cannot store one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def metadata_clean(value: Any, limits: Limits, *, measure: bool = False) -> dict[str, Any]:
    """An example's metadata as every write takes it (import, edit, restore): an object, nested at most
    `limits.max_depth` deep, without NUL characters; `measure` also bounds its encoded size (an import's line bound
    it already)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidExample("invalid_metadata", "`metadata` must be an object.")
    if any(isinstance(item, (dict, list)) for item in value.values()) and _too_deep(value, limits.max_depth):
        raise InvalidExample("too_deep", f"`metadata` is nested deeper than {limits.max_depth} levels.")
    if value and has_nul(value):
        raise InvalidExample("null_character", "`metadata` contains a NUL character (\\u0000).")
    if measure and value and len(orjson.dumps(value)) > limits.max_line_bytes:
        raise InvalidExample("too_large", f"`metadata` is larger than {limits.max_line_bytes:,} bytes once encoded.")
    return value


def label_clean(value: Any, labels: frozenset[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_LABEL_LENGTH:
        raise InvalidExample("invalid_label", f"`label` must be a string of at most {MAX_LABEL_LENGTH} characters.")
    value = value.strip()
    if "\x00" in value:
        raise InvalidExample("null_character", "`label` contains a NUL character (\\u0000).")
    if value and labels and value not in labels:
        raise InvalidExample(
            "unknown_label", f"label {value!r} is not in the project's label set ({', '.join(sorted(labels))})."
        )
    return value


def tags_clean(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) and len(tag) <= MAX_TAG_LENGTH for tag in value):
        raise InvalidExample(
            "invalid_tags", f"`tags` must be a list of strings of at most {MAX_TAG_LENGTH} characters."
        )
    if any("\x00" in tag for tag in value):
        raise InvalidExample("null_character", "a tag contains a NUL character (\\u0000).")
    return list(dict.fromkeys(tag.strip() for tag in value if tag.strip()))


_DECODE_POSITION = re.compile(r": line \d+ column (\d+) \(char \d+\)$")


def example_to_json_line(messages: Any, label: str, tags: list[str], metadata: dict, *, messages_only: bool) -> bytes:
    """One exported JSONL line in the OpenAI chat format (plus label, tags and metadata unless messages_only)."""
    row: dict[str, Any] = {"messages": messages}
    if not messages_only:
        if label:
            row["label"] = label
        if tags:
            row["tags"] = tags
        if metadata:
            row["metadata"] = metadata
    try:
        return orjson.dumps(row) + b"\n"
    except TypeError:  # nested past orjson's 254 levels (a row older than the write limits): the slower encoder
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
