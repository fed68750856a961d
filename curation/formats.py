"""Reading training examples in the formats people have: parse, validate and normalise them, one line at a time.

Pure Python (no Django, no database): a reader yields a `ParsedExample` or a `LineError` for every input line, so
that the caller can stream a file of any size and still report every problem with its 1-based line number.

The checks follow OpenAI's fine-tuning data-preparation notebook (not JSON, not an object, `messages` missing or not
a list, empty, a message without `role` or `content`, an unknown key, an unknown role, content not a string, no
assistant message) and add: empty content, a line over the size limit, absurd nesting, invalid UTF-8, too many
tokens, and labels or tags of the wrong shape.

Files come as JSONL, a JSON array, CSV (a header row gives the keys) or Parquet (the columns are the keys). Rows in a
shape the product does not know (instruction/context/response/category, question/answer, ...) are read through a
`ColumnMapping` that names which keys make the system prompt, the user's turn, the answer, the label and metadata.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import hashlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

import ijson
import orjson

from . import patterns

FORMATS = ("auto", "openai", "sharegpt", "alpaca", "prompt_completion")
# The file formats that `?format=` may also name (their rows are read as `auto`, or through a mapping).
FILE_FORMATS = ("csv", "parquet")
ROLES = frozenset({"system", "user", "assistant"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})
# Keys every format may carry beside its own: the label, tags, free metadata and an external id (kept in metadata).
COMMON_KEYS = frozenset({"label", "tags", "metadata", "id"})
FORMAT_KEYS = {
    "openai": frozenset({"messages"}) | COMMON_KEYS,
    "sharegpt": frozenset({"conversations", "system"}) | COMMON_KEYS,
    "alpaca": frozenset({"instruction", "input", "output", "system"}) | COMMON_KEYS,
    "prompt_completion": frozenset({"prompt", "completion", "system"}) | COMMON_KEYS,
}
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
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


# --- Column mapping ----------------------------------------------------------------------------------------------

MAPPING_TARGETS = ("system", "user", "assistant", "label", "metadata")
MAPPING_EXAMPLE = '{"user": ["instruction", "context"], "assistant": "response", "label": "category"}'
MAX_MAPPED_KEYS = 100
MAX_KEY_NAME = 200
MAX_IGNORED_KEYS = 1000
# Key names the suggester recognises, best first (compared lower-cased, spaces and dashes as underscores). `input`
# is the user's turn on its own, but the second part of it (context) after an instruction, prompt or question.
_SYSTEM_NAMES = ("system", "system_prompt", "system_message", "sys", "persona")
_USER_NAMES = ("instruction", "prompt", "question", "query", "input", "user", "human", "request")
_CONTEXT_NAMES = ("context", "input", "document", "passage", "background")
_ASSISTANT_NAMES = ("response", "output", "answer", "completion", "assistant", "gpt", "reply", "target")
_LABEL_NAMES = ("label", "category", "class", "intent")


class MappingError(ValueError):
    """A column mapping that cannot be used; the message says why."""


@dataclass(slots=True)
class ColumnMapping:
    """Which keys of a flat row make the chat example: the system prompt, the user's turn, the answer, the label
    and the metadata. Several user (or system, or assistant) keys are joined with a blank line, empty ones skipped.
    Keys the mapping does not name are ignored; `ignored` counts, per key, the rows where it held a value."""

    system: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    assistant: tuple[str, ...] = ()
    label: str | None = None
    metadata: tuple[str, ...] = ()
    ignored: Counter = field(default_factory=Counter)
    named: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.named = frozenset((*self.system, *self.user, *self.assistant, *self.metadata, *filter(None, [self.label])))

    def as_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        for target in MAPPING_TARGETS:
            value = getattr(self, target)
            # As a person writes it: one key as a string, several as a list; metadata always a list.
            if not value:
                continue
            if isinstance(value, str):
                spec[target] = value
            elif len(value) == 1 and target != "metadata":
                spec[target] = value[0]
            else:
                spec[target] = list(value)
        return spec

    def messages(self, obj: dict) -> list[dict[str, str]]:
        messages = []
        if self.system and (system := self._joined(obj, self.system, "system")):
            messages.append({"role": "system", "content": system})
        for role, keys in (("user", self.user), ("assistant", self.assistant)):
            text = self._joined(obj, keys, role)
            if not text:
                names = ", ".join(f"`{key}`" for key in keys)
                verb = "is" if len(keys) == 1 else "are all"
                raise InvalidExample("missing_value", f"{names} (mapped to {role}) {verb} missing or empty.")
            messages.append({"role": role, "content": text})
        return messages

    @staticmethod
    def _joined(obj: dict, keys: tuple[str, ...], target: str) -> str:
        parts = []
        for key in keys:
            value = obj.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise InvalidExample("content_not_string", f"`{key}` (mapped to {target}) must be a string.")
                value = str(value)
            if value and not value.isspace():
                parts.append(value)
        return "\n\n".join(parts)

    def label_of(self, obj: dict) -> Any:
        value = obj.get(self.label) if self.label else None
        # A class number (a Parquet int column, a JSON number) is a label like any other.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def metadata_of(self, obj: dict, limits: Limits) -> dict[str, Any]:
        metadata = {key: obj[key] for key in self.metadata if obj.get(key) is not None}
        nested = any(isinstance(value, (dict, list)) for value in metadata.values())
        if nested and _too_deep(metadata, limits.max_depth):
            raise InvalidExample("too_deep", f"`metadata` is nested deeper than {limits.max_depth} levels.")
        # The keys are the mapping's (checked); flat text values need no walk through the whole structure.
        if any("\x00" in value for value in metadata.values() if isinstance(value, str)) or (
            nested and has_nul(metadata)
        ):
            raise InvalidExample("null_character", "`metadata` contains a NUL character (\\u0000).")
        return metadata

    def count_ignored(self, obj: dict) -> None:
        if not obj.keys() <= self.named:
            ignored = self.ignored
            for key, value in obj.items():
                # Bounded: a file with a new key on every line must not grow this without end.
                if key not in self.named and value is not None and (key in ignored or len(ignored) < MAX_IGNORED_KEYS):
                    ignored[key] += 1


def mapping_parse(value: Any) -> ColumnMapping:
    """A ColumnMapping from its JSON text (or the decoded object); raises MappingError saying what is wrong."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise MappingError(
                f"`mapping` is not valid JSON ({_DECODE_POSITION.sub('', str(error))}); send an object such as "
                f"{MAPPING_EXAMPLE}."
            ) from None
    if not isinstance(value, dict):
        raise MappingError(f"`mapping` must be a JSON object such as {MAPPING_EXAMPLE}.")
    unknown = [key for key in value if key not in MAPPING_TARGETS]
    if unknown:
        raise MappingError(
            f"`mapping` has unknown target(s) {', '.join(map(repr, unknown))}; use {', '.join(MAPPING_TARGETS)}."
        )
    fields: dict[str, Any] = {}
    for target, names in value.items():
        if target == "label":
            if not _key_name(names):
                raise MappingError("`mapping.label` must be the name of one key (a non-empty string).")
            fields["label"] = names
            continue
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(_key_name(name) for name in names):
            raise MappingError(
                f"`mapping.{target}` must be a key name or a non-empty list of key names (non-empty strings of at most"
                f" {MAX_KEY_NAME} characters)."
            )
        fields[target] = tuple(dict.fromkeys(names))
    missing = [target for target in ("user", "assistant") if target not in fields]
    if missing:
        raise MappingError(f"`mapping` must name the key(s) of {' and '.join(missing)}, e.g. {MAPPING_EXAMPLE}.")
    if sum(len(v) if isinstance(v, tuple) else 1 for v in fields.values()) > MAX_MAPPED_KEYS:
        raise MappingError(f"`mapping` names more than {MAX_MAPPED_KEYS} keys.")
    return ColumnMapping(**fields)


def _key_name(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_KEY_NAME and "\x00" not in name


def mapping_suggest(keys: Iterable[Any]) -> dict[str, Any]:
    """A mapping guessed from the keys a file's rows carry: common names for the prompt, its context, the answer,
    the system prompt and the label; every other key goes to metadata. Pure; may lack `user` or `assistant` when no
    key looks like one (the person completes it)."""
    keys = list(dict.fromkeys(key for key in keys if isinstance(key, str) and key))
    by_name: dict[str, str] = {}
    for key in keys:
        by_name.setdefault(re.sub(r"[\s\-]+", "_", key.strip().lower()), key)
    taken: set[str] = set()

    def pick(names: tuple[str, ...]) -> str | None:
        for name in names:
            key = by_name.get(name)
            if key is not None and key not in taken:
                taken.add(key)
                return key
        return None

    system, user, assistant, label = pick(_SYSTEM_NAMES), pick(_USER_NAMES), pick(_ASSISTANT_NAMES), pick(_LABEL_NAMES)
    context = pick(_CONTEXT_NAMES)
    suggestion: dict[str, Any] = {}
    if system:
        suggestion["system"] = system
    users = [key for key in (user, context) if key]
    if users:
        suggestion["user"] = users[0] if len(users) == 1 else users
    if assistant:
        suggestion["assistant"] = assistant
    if label:
        suggestion["label"] = label
    rest = [key for key in keys if key not in taken]
    if rest:
        suggestion["metadata"] = rest
    return suggestion


def mapping_hint(obj: Any) -> str:
    """The sentence an error about an unknown shape ends with: a mapping exists, and one suggested for this row."""
    suggestion = mapping_suggest(obj) if isinstance(obj, dict) else {}
    if "user" not in suggestion or "assistant" not in suggestion:
        example = MAPPING_EXAMPLE
    else:
        example = json.dumps(suggestion, ensure_ascii=False)
        if len(example) > 300:  # a row with many keys: the rest can go to metadata, the hint need not list them
            example = json.dumps({k: v for k, v in suggestion.items() if k != "metadata"}, ensure_ascii=False)[:300]
    return (
        " Rows in another shape import with a column mapping (`mapping=` on the API, --mapping on import_examples),"
        f" e.g. mapping={example}."
    )


def example_from_row(obj: Any, line: int, *, mapping: ColumnMapping, labels: frozenset[str], limits: Limits):
    """Build, validate and normalise one example from a flat row through a mapping; raises InvalidExample."""
    if not isinstance(obj, dict):
        raise InvalidExample("not_an_object", f"expected an object, got {type(obj).__name__}.")
    mapping.count_ignored(obj)
    messages = validate_messages(mapping.messages(obj), max_tokens=limits.max_tokens)
    label = label_clean(mapping.label_of(obj), labels)
    metadata = mapping.metadata_of(obj, limits)
    messages_json = messages_dump(messages)
    return ParsedExample(line, messages, messages_json, content_hash(messages_json), label, [], metadata)


_DECODE_POSITION = re.compile(r": line \d+ column (\d+) \(char \d+\)$")


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


def read_lines(
    stream: IO[bytes], *, max_line_bytes: int, max_body_bytes: int, chunk_bytes: int = 1 << 20
) -> Iterator[tuple[int, bytes | None]]:
    """Yield (line number, bytes) for each non-blank line; bytes is None for a line over the size limit.

    Reads the stream in chunks (far faster than readline through the WSGI layers) and never holds more than one
    chunk plus one line of max_line_bytes, so neither a big body nor a huge line sits in memory whole.
    """
    consumed = 0
    number = 0
    pending = b""
    oversized = False  # the line being read has already passed the limit; its bytes are being skipped
    while True:
        chunk = stream.read(chunk_bytes)
        consumed += len(chunk)
        if consumed > max_body_bytes:
            raise BodyTooLarge(f"the body is over the limit of {max_body_bytes} bytes.")
        if not chunk:
            if pending or oversized:
                number += 1
                yield from _line(number, None if oversized else pending, max_line_bytes)
            return
        lines = chunk.split(b"\n")
        lines[0] = pending + lines[0]
        pending = lines.pop()
        for raw in lines:
            number += 1
            if oversized:
                oversized = False
                yield number, None
            else:
                yield from _line(number, raw, max_line_bytes)
        if len(pending) > max_line_bytes:
            oversized, pending = True, b""


def _line(number: int, raw: bytes | None, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    if raw is None or len(raw) > max_line_bytes:
        yield number, None
        return
    if number == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    if raw and not raw.isspace():
        yield number, raw


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


def read_jsonl(
    stream: IO[bytes],
    *,
    fmt: str,
    labels: Iterable[str],
    limits: Limits,
    max_body_bytes: int,
    mapping: ColumnMapping | None = None,
) -> Iterator[ParsedExample | LineError]:
    """Stream a JSONL body: one result per non-blank line."""
    rows = rows_jsonl(stream, limits=limits, max_body_bytes=max_body_bytes)
    return parse_rows(rows, fmt=fmt, labels=labels, limits=limits, mapping=mapping)


def read_json_document(
    data: bytes, *, fmt: str, labels: Iterable[str], limits: Limits, mapping: ColumnMapping | None = None
) -> Iterator[ParsedExample | LineError]:
    """A JSON array of examples (or one example object). "line" is the 1-based position in the array."""
    return parse_rows(rows_json_document(data), fmt=fmt, labels=labels, limits=limits, mapping=mapping)


def rows_jsonl(stream: IO[bytes], *, limits: Limits, max_body_bytes: int) -> Iterator[Row]:
    for number, raw in read_lines(stream, max_line_bytes=limits.max_line_bytes, max_body_bytes=max_body_bytes):
        if raw is None:
            yield LineError(number, "line_too_long", f"the line is over the limit of {limits.max_line_bytes} bytes.")
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            yield _decode_error(raw, number, error)


def rows_json_document(data: bytes) -> Iterator[Row]:
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        yield _decode_error(data, 1, error)
        return
    yield from enumerate(document if isinstance(document, list) else [document], start=1)


# CSV cells that may hold JSON (a `messages` list, `tags`, `metadata`), as an export to CSV would write them.
_CSV_JSON_COLUMNS = ("messages", "conversations", "tags", "metadata")


def rows_csv(stream: IO[bytes], *, limits: Limits, max_body_bytes: int, chunk_bytes: int = 1 << 20) -> Iterator[Row]:
    """The rows of a CSV body (comma-separated, double quotes, UTF-8 with or without a BOM), streamed.

    The header row gives the keys (a column without a name becomes `column_<n>`); an empty cell is None.
    A row's line is the physical line its record starts on, so a record with line breaks inside quotes keeps the
    line number a text editor shows. Bad UTF-8 or a line over the limit spoils only the record it is in.
    """
    if csv.field_size_limit() < limits.max_line_bytes:
        csv.field_size_limit(limits.max_line_bytes)
    problems: dict[int, str] = {}  # physical line -> code, filled as the lines are read
    lines = _csv_lines(stream, limits=limits, max_body_bytes=max_body_bytes, chunk_bytes=chunk_bytes, problems=problems)
    reader = csv.reader(lines)
    header: list[str] | None = None
    end = 0
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            end = reader.line_num
            yield LineError(start, "invalid_csv", f"not valid CSV: {error}.")
            continue
        end = reader.line_num
        if problems:
            found = [problems.pop(number) for number in range(start, end + 1) if number in problems]
            if found:
                yield _csv_problem(start, found[0], limits)
                if header is None:
                    return
                continue
        if not record:
            continue
        if header is None:
            header = [name.strip() or f"column_{number}" for number, name in enumerate(record, start=1)]
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                yield LineError(start, "invalid_header", f"the header names a column twice: {', '.join(repeated)}.")
                return
            continue
        if len(record) != len(header):
            yield LineError(start, "csv_columns", f"the record has {len(record)} fields; the header has {len(header)}.")
            continue
        if sum(map(len, record)) > limits.max_line_bytes:
            yield _csv_problem(start, "line_too_long", limits)
            continue
        row = {key: value or None for key, value in zip(header, record, strict=True)}
        for key in _CSV_JSON_COLUMNS:
            value = row.get(key)
            if value and value[0] in "[{":
                try:
                    row[key] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass  # left as text: the row's check says what is wrong with it
        yield start, row


def _csv_problem(line: int, code: str, limits: Limits) -> LineError:
    if code == "invalid_utf8":
        return LineError(line, code, "the record is not valid UTF-8.")
    return LineError(line, code, f"the record is over the limit of {limits.max_line_bytes} bytes.")


def _csv_lines(
    stream: IO[bytes], *, limits: Limits, max_body_bytes: int, chunk_bytes: int, problems: dict[int, str]
) -> Iterator[str]:
    """Every physical line, decoded, with its line break (the csv module needs them to read quoted line breaks).

    Works a chunk at a time (its complete lines decoded in one go, line by line only when that fails) and, like
    read_lines, never holds more than a chunk plus one line of max_line_bytes.
    """
    max_line = limits.max_line_bytes
    consumed = 0
    number = 0
    pending = b""
    oversized = False  # the line being read has passed the limit; its bytes are being skipped
    while True:
        chunk = stream.read(chunk_bytes)
        consumed += len(chunk)
        if consumed > max_body_bytes:
            raise BodyTooLarge(f"the body is over the limit of {max_body_bytes} bytes.")
        if chunk:
            lines = chunk.split(b"\n")
            lines[0] = pending + lines[0]
            pending = lines.pop()
        else:
            lines, pending = ([pending] if pending or oversized else []), b""
        if number == 0 and lines and lines[0].startswith(UTF8_BOM):
            lines[0] = lines[0][len(UTF8_BOM) :]
        if oversized and lines:
            lines[0], oversized = b"", False
            problems[number + 1] = "line_too_long"
        for index, raw in enumerate(lines):
            if len(raw) > max_line:
                lines[index] = b""
                problems[number + index + 1] = "line_too_long"
        try:
            texts = b"\n".join(lines).decode("utf-8").split("\n") if lines else []
        except UnicodeDecodeError:
            texts = [_csv_decoded(raw, number + index + 1, problems) for index, raw in enumerate(lines)]
        number += len(lines)
        for text in texts:
            yield text + "\n"
        if not chunk:
            return
        if len(pending) > max_line:
            oversized, pending = True, b""


def _csv_decoded(raw: bytes, number: int, problems: dict[int, str]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems[number] = "invalid_utf8"
        return raw.decode("utf-8", "replace")


def rows_parquet(stream: IO[bytes], *, max_body_bytes: int, batch_rows: int = 1000) -> Iterator[Row]:
    """The rows of a Parquet file, read a batch at a time; a row's "line" is its 1-based row number, and 0 stands
    for the file as a whole. Parquet keeps its index at the end of the file, so a stream that cannot seek (a request
    body) is spooled to a temporary file first. Dates, decimals and bytes become text, as JSON holds them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spooled = None
    try:
        seekable = getattr(stream, "seekable", None)
        if seekable is None or not seekable():
            spooled = stream = _spool(stream, max_body_bytes)
        try:
            parquet = pq.ParquetFile(stream)
        except (pa.ArrowException, OSError, ValueError) as error:
            yield LineError(0, "invalid_parquet", f"not a readable Parquet file: {error}")
            return
        schema = parquet.schema_arrow
        odd = [name for name, kind in zip(schema.names, schema.types, strict=True) if _odd_type(kind)]
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=batch_rows):
                for row in batch.to_pylist():
                    number += 1
                    for name in odd:
                        row[name] = _plain(row[name])
                    yield number, row
        except (pa.ArrowException, OSError, ValueError) as error:
            yield LineError(number + 1, "invalid_parquet", f"the file cannot be read from this row on: {error}")
    finally:
        if spooled is not None:
            spooled.close()


def _spool(stream: IO[bytes], max_body_bytes: int, chunk_bytes: int = 1 << 20) -> IO[bytes]:
    spooled = tempfile.SpooledTemporaryFile(max_size=32 << 20)
    consumed = 0
    while chunk := stream.read(chunk_bytes):
        consumed += len(chunk)
        if consumed > max_body_bytes:
            spooled.close()
            raise BodyTooLarge(f"the body is over the limit of {max_body_bytes} bytes.")
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


def _odd_type(kind) -> bool:
    """Whether a Arrow type gives Python values that JSON cannot hold (dates, decimals, bytes), at any depth."""
    import pyarrow as pa

    types = pa.types
    if types.is_temporal(kind) or types.is_decimal(kind) or types.is_binary(kind) or types.is_large_binary(kind):
        return True
    if types.is_fixed_size_binary(kind):
        return True
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        return _odd_type(kind.value_type)
    if types.is_struct(kind):
        return any(_odd_type(kind.field(index).type) for index in range(kind.num_fields))
    if types.is_map(kind):
        return _odd_type(kind.key_type) or _odd_type(kind.item_type)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


JSONL_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines"}
)
CSV_TYPES = frozenset({"text/csv", "application/csv"})
PARQUET_TYPES = frozenset({"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"})
PARQUET_MAGIC = b"PAR1"


def body_kind(*, requested: str, content_type: str) -> str | None:
    """How to read a request body: `?format=csv|parquet` first, then its Content-Type; None if unsupported."""
    if requested in FILE_FORMATS:
        return requested
    content_type = content_type.split(";")[0].strip().lower()
    if content_type in JSONL_TYPES:
        return "jsonl"
    if content_type == "application/json":
        return "json"
    if content_type in CSV_TYPES:
        return "csv"
    if content_type in PARQUET_TYPES:
        return "parquet"
    return None


def file_kind(*, requested: str = "", name: str = "", content_type: str = "", head: bytes = b"") -> str:
    """How to read an uploaded file: `?format=csv|parquet`, its extension, its first bytes, then its content type;
    JSONL when nothing says otherwise."""
    name = name.lower()
    content_type = content_type.split(";")[0].strip().lower()
    if requested in FILE_FORMATS:
        return requested
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")) or head.startswith(PARQUET_MAGIC):
        return "parquet"
    if name.endswith(".json") or head.lstrip().startswith((b"[", UTF8_BOM + b"[")):
        return "json"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if content_type in CSV_TYPES:
        return "csv"
    if content_type in PARQUET_TYPES:
        return "parquet"
    return "jsonl"


def read_rows(kind: str, stream: IO[bytes], *, limits: Limits, max_body_bytes: int) -> Iterator[Row]:
    """The decoded rows of a body or file of the given kind (jsonl, json, csv or parquet)."""
    if kind == "csv":
        return rows_csv(stream, limits=limits, max_body_bytes=max_body_bytes)
    if kind == "parquet":
        return rows_parquet(stream, max_body_bytes=max_body_bytes)
    if kind == "json":
        return _rows_json_stream(stream, max_body_bytes)
    return rows_jsonl(stream, limits=limits, max_body_bytes=max_body_bytes)


def _rows_json_stream(stream: IO[bytes], max_body_bytes: int, chunk_bytes: int = 1 << 16) -> Iterator[Row]:
    """A JSON document, streamed: an array's elements are decoded one at a time (ijson), so memory holds one
    example, not the whole array (a 30 MB array took a worker from 108 to 489 MB parsed whole); a lone object is
    one row. An error in the JSON ends the rows with a LineError at the element where it stopped."""
    body = _Bounded(stream, max_body_bytes)
    head = body.read(chunk_bytes)
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    if not head.lstrip().startswith(b"["):
        rest = bytearray(head)
        while chunk := body.read(chunk_bytes):
            rest += chunk
        yield from rows_json_document(bytes(rest))
        return
    position = 0
    events = ijson.basic_parse(_Prefixed(head, body), use_float=True)
    try:
        next(events)  # the array's start
        for position, element in enumerate(_array_elements(events, max_depth=_JSON_ELEMENT_MAX_DEPTH), start=1):
            if element is _TOO_DEEP:
                yield LineError(position, "too_deep", "JSON nested too deeply.")
            else:
                yield position, element
    except ijson.JSONError as error:
        reason = " ".join(str(error).split())
        yield LineError(position + 1, "invalid_json", f"not valid JSON after element {position}: {reason}.")


# An example is messages (3 levels) plus metadata (Limits.max_depth, at most 32 by default): anything deeper is
# refused while it streams, before it is built (ijson's own item builder keeps a path string per level: 100,000
# nested brackets took it past 20 GB).
_JSON_ELEMENT_MAX_DEPTH = 64
_TOO_DEEP = object()


def _array_elements(events: Iterator[tuple[str, Any]], *, max_depth: int) -> Iterator[Any]:
    """The elements of a JSON array from ijson's basic events (the array's start already read), one at a time;
    _TOO_DEEP for an element nested past max_depth (its events are skipped, not built)."""
    stack: list[Any] = []  # the containers of the element being built, outermost first
    keys: list[Any] = []  # for each container on the stack, the key of the value it waits for (dicts)
    skipping = 0  # depth inside an element being skipped
    for event, value in events:
        if skipping:
            skipping += 1 if event in ("start_map", "start_array") else -1 if event in ("end_map", "end_array") else 0
            if skipping == 0:
                yield _TOO_DEEP
            continue
        if event in ("start_map", "start_array"):
            if len(stack) >= max_depth:
                stack.clear()
                keys.clear()
                skipping = 1
                continue
            container: Any = {} if event == "start_map" else []
            if stack:
                _json_add(stack[-1], keys[-1], container)
            stack.append(container)
            keys.append(None)
        elif event == "map_key":
            keys[-1] = value
        elif event in ("end_map", "end_array"):
            if not stack:  # the array itself ends
                return
            done = stack.pop()
            keys.pop()
            if not stack:
                yield done
        elif stack:
            _json_add(stack[-1], keys[-1], value)
        else:
            yield value  # a bare number, string, true, false or null as an element


def _json_add(container: Any, key: Any, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container.append(value)


class _Bounded:
    """A stream that raises BodyTooLarge once more than `limit` bytes were read from it."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.stream, self.limit, self.consumed = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.consumed += len(chunk)
        if self.consumed > self.limit:
            raise BodyTooLarge(f"the body is over the limit of {self.limit} bytes.")
        return chunk


class _Prefixed:
    """`head`, then the rest of `stream`: the bytes read to tell an array from an object are not lost."""

    def __init__(self, head: bytes, stream):
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for 0 bytes to learn whether the stream gives bytes or text
            return b""
        if self.head:
            chunk, self.head = self.head, b""
            return chunk
        return self.stream.read(size)


def read_input(
    kind: str,
    stream: IO[bytes],
    *,
    fmt: str,
    labels: Iterable[str],
    limits: Limits,
    max_body_bytes: int,
    mapping: ColumnMapping | None = None,
) -> Iterator[ParsedExample | LineError]:
    """Examples and line-numbered errors from a body or file of the given kind, one result per row."""
    fmt = "auto" if fmt in FILE_FORMATS else fmt
    rows = read_rows(kind, stream, limits=limits, max_body_bytes=max_body_bytes)
    if mapping is None and kind in ("csv", "parquet"):
        rows = _present(rows)
    return parse_rows(rows, fmt=fmt, labels=labels, limits=limits, mapping=mapping)


def _present(rows: Iterable[Row]) -> Iterator[Row]:
    """Rows without their empty cells: in a table every row has every column, but an empty `label`, `id` or `input`
    means "none", as an absent key does in JSON."""
    for row in rows:
        if isinstance(row, LineError) or not isinstance(row[1], dict) or None not in row[1].values():
            yield row
        else:
            yield row[0], {key: value for key, value in row[1].items() if value is not None}


def import_preview(
    rows: Iterable[Row],
    *,
    kind: str = "jsonl",
    fmt: str = "auto",
    labels: Iterable[str],
    limits: Limits,
    mapping: ColumnMapping | None = None,
    count: int = 5,
    scan: int = 20,
) -> dict[str, Any]:
    """What an import would make of a file's first rows, without writing anything: the keys the first `scan` rows
    carry, whether they need a mapping (they are in no shape the product reads as is), a mapping suggested from the
    keys, and the first `count` rows as examples or errors under the given mapping (else the suggested one)."""
    fmt = "auto" if fmt in FILE_FORMATS else fmt
    label_set = frozenset(labels)
    head = list(islice(rows, scan))
    objects = [row[1] for row in head if not isinstance(row, LineError) and isinstance(row[1], dict)]
    keys = list(dict.fromkeys(key for obj in objects for key in obj))
    plain_rows = list(_present(head[:count])) if kind in ("csv", "parquet") else head[:count]
    plain = list(parse_rows(plain_rows, fmt=fmt, labels=label_set, limits=limits))
    needs_mapping = any(isinstance(r, LineError) and r.code in ("unknown_key", "missing_messages") for r in plain)
    suggestion = mapping_suggest(keys) if needs_mapping or mapping is not None else None
    used = mapping
    if used is None and needs_mapping:
        try:
            used = mapping_parse(suggestion)
        except MappingError:
            used = None
    if used is not None:
        plain = list(parse_rows(head[:count], fmt=fmt, labels=label_set, limits=limits, mapping=used))
    return {
        "keys": keys,
        "needs_mapping": needs_mapping,
        "suggested_mapping": suggestion,
        "mapping": used.as_dict() if used is not None else None,
        "ignored_keys": sorted(used.ignored) if used is not None else [],
        "rows": [_preview_row(result) for result in plain],
    }


def _preview_row(result: ParsedExample | LineError) -> dict[str, Any]:
    if isinstance(result, LineError):
        return {"line": result.line, "example": None, "error": result.as_dict()}
    example = {"messages": result.messages, "label": result.label, "tags": result.tags, "metadata": result.metadata}
    return {"line": result.line, "example": example, "error": None}


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


def answer_violations(spec: dict | None, text: str) -> list[str]:
    """What is wrong with an assistant answer under the project's output format spec, in words; [] if nothing.

    regex: the whole answer must match; the first place where it stops matching is named by line and column
    (found with partial matching, so "line 2, column 1" points at a misspelt IMPACT:). json_schema: the answer must
    be JSON that the schema accepts; the failing path is named. Patterns run on RE2 and schemas under a time budget
    (curation.patterns): a format that cannot be applied says so instead of failing the page.
    """
    kind = (spec or {}).get("kind", "none")
    try:
        if kind == "regex":
            return _regex_violations(spec["pattern"], text)
        if kind == "json_schema":
            return _schema_violations(spec["schema"], text)
    except (patterns.PatternError, patterns.Unchecked) as error:
        return [f"the project's output format cannot be applied: {error}"]
    return []


def answer_checker(spec: dict | None):
    """A fast check of answers under a spec (for scanning many): True, False, or None when the format could not be
    applied to that answer (see answer_violations for why). None instead of a checker when the project sets no
    format."""
    kind = (spec or {}).get("kind", "none")
    if kind == "regex":
        try:
            compiled = patterns.regex_compile(spec["pattern"])
        except patterns.PatternError:
            return lambda text: None
        return lambda text: compiled.fullmatch(text) is not None
    if kind == "json_schema":
        try:
            validator = patterns.SchemaValidator(spec["schema"])
        except patterns.Unchecked:
            return lambda text: None

        def fits(text: str) -> bool | None:
            try:
                return validator.fits(orjson.loads(text))
            except orjson.JSONDecodeError:
                return False
            except patterns.Unchecked:
                return None

        return fits
    return None


def last_answer(messages: list[dict]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "assistant"), "")


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _regex_violations(pattern: str, text: str) -> list[str]:
    if patterns.regex_compile(pattern).fullmatch(text) is not None:
        return []
    # The longest start that can still grow into a match: the answer goes wrong right after it.
    low = patterns.regex_fitting_prefix(pattern, text)
    if low is None:
        return ["the answer does not fit the format."]
    if low == len(text):
        return [f"the answer stops too early: it matches the format up to its end ({_position(text, len(text))})."]
    line_start = text.rfind("\n", 0, low) + 1
    line_end = text.find("\n", low)
    line_text = text[line_start : line_end if line_end != -1 else len(text)]
    return [f"{_position(text, low)} does not fit the format: {line_text!r}."]


def _schema_violations(schema: dict, text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return [f"the answer is not valid JSON: {_DECODE_POSITION.sub('', str(error))}."]
    problems = []
    errors = patterns.SchemaValidator(schema).errors(value)
    # Paths mix indexes and names: compared as (kind, value) pairs, never an int against a str.
    for error in sorted(errors, key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])[:5]:
        where = "".join(f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
        rule = "/".join(str(part) for part in error.absolute_schema_path)  # what was expected, ending in the keyword
        problems.append(f'at ${where}: {error.message} (the schema\'s #/{rule}, keyword "{error.validator}")')
    return problems
