"""Reading training examples in the formats people have: parse, validate and normalise them, one line at a time.

Pure Python (no Django, no database): a reader yields a `ParsedExample` or a `LineError` for every input line, so
that the caller can stream a file of any size and still report every problem with its 1-based line number.

The checks follow OpenAI's fine-tuning data-preparation notebook (not JSON, not an object, `messages` missing or not
a list, empty, a message without `role` or `content`, an unknown key, an unknown role, content not a string, no
assistant message) and add: empty content, a line over the size limit, absurd nesting, invalid UTF-8, too many
tokens, and labels or tags of the wrong shape.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

FORMATS = ("auto", "openai", "sharegpt", "alpaca", "prompt_completion")
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
        "missing_messages", "no `messages` key (nor ShareGPT `conversations`, Alpaca `instruction` or `prompt`)."
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
        raise InvalidExample(
            "unknown_key", f"unknown key(s) {', '.join(unknown)}; allowed for {fmt}: {', '.join(sorted(allowed))}."
        )
    messages = validate_messages(_messages_from(obj, fmt), max_tokens=limits.max_tokens)
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise InvalidExample("invalid_metadata", "`metadata` must be an object.")
    elif any(isinstance(value, (dict, list)) for value in metadata.values()) and _too_deep(metadata, limits.max_depth):
        raise InvalidExample("too_deep", f"`metadata` is nested deeper than {limits.max_depth} levels.")
    if metadata and has_nul(metadata):
        raise InvalidExample("null_character", "`metadata` contains a NUL character (\\u0000).")
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


_DECODE_POSITION = re.compile(r": line \d+ column (\d+) \(char \d+\)$")


def parse_line(raw: bytes, line: int, *, fmt: str, labels: frozenset[str], limits: Limits) -> ParsedExample | LineError:
    """Decode and validate one JSONL line."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return _decode_error(raw, line, error)
    try:
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


def read_jsonl(
    stream: IO[bytes], *, fmt: str, labels: Iterable[str], limits: Limits, max_body_bytes: int
) -> Iterator[ParsedExample | LineError]:
    """Stream a JSONL body: one result per non-blank line."""
    label_set = frozenset(labels)
    for number, raw in read_lines(stream, max_line_bytes=limits.max_line_bytes, max_body_bytes=max_body_bytes):
        if raw is None:
            yield LineError(number, "line_too_long", f"the line is over the limit of {limits.max_line_bytes} bytes.")
        else:
            yield parse_line(raw, number, fmt=fmt, labels=label_set, limits=limits)


def read_json_document(
    data: bytes, *, fmt: str, labels: Iterable[str], limits: Limits
) -> Iterator[ParsedExample | LineError]:
    """A JSON array of examples (or one example object). "line" is the 1-based position in the array."""
    label_set = frozenset(labels)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        yield _decode_error(data, 1, error)
        return
    items = document if isinstance(document, list) else [document]
    for number, obj in enumerate(items, start=1):
        try:
            yield example_from_object(obj, number, fmt=fmt, labels=label_set, limits=limits)
        except InvalidExample as error:
            yield LineError(number, error.code, error.message)


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
    return orjson.dumps(row) + b"\n"


def answer_violations(spec: dict | None, text: str) -> list[str]:
    """What is wrong with an assistant answer under the project's output format spec, in words; [] if nothing.

    regex: the whole answer must match; the first place where it stops matching is named by line and column
    (found with partial matching, so "line 2, column 1" points at a misspelt IMPACT:). json_schema: the answer must
    be JSON that the schema accepts; the failing path is named.
    """
    kind = (spec or {}).get("kind", "none")
    if kind == "regex":
        return _regex_violations(spec["pattern"], text)
    if kind == "json_schema":
        return _schema_violations(spec["schema"], text)
    return []


def answer_checker(spec: dict | None):
    """A fast yes/no check of answers under a spec (for scanning many); None when the project sets no format."""
    kind = (spec or {}).get("kind", "none")
    if kind == "regex":
        import regex

        compiled = regex.compile(spec["pattern"])
        return lambda text: compiled.fullmatch(text) is not None
    if kind == "json_schema":
        import jsonschema

        validator = jsonschema.validators.validator_for(spec["schema"])(spec["schema"])

        def fits(text: str) -> bool:
            try:
                return validator.is_valid(orjson.loads(text))
            except orjson.JSONDecodeError:
                return False

        return fits
    return None


def last_answer(messages: list[dict]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "assistant"), "")


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _regex_violations(pattern: str, text: str) -> list[str]:
    import regex

    compiled = regex.compile(pattern)
    if compiled.fullmatch(text):
        return []
    if compiled.fullmatch(text, partial=True):
        return [f"the answer stops too early: it matches the format up to its end ({_position(text, len(text))})."]
    # The longest prefix that can still grow into a match: the answer goes wrong right after it.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if compiled.fullmatch(text[:middle], partial=True):
            low = middle
        else:
            high = middle - 1
    line_start = text.rfind("\n", 0, low) + 1
    line_end = text.find("\n", low)
    line_text = text[line_start : line_end if line_end != -1 else len(text)]
    return [f"{_position(text, low)} does not fit the format: {line_text!r}."]


def _schema_violations(schema: dict, text: str) -> list[str]:
    import jsonschema

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return [f"the answer is not valid JSON: {_DECODE_POSITION.sub('', str(error))}."]
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))[:5]:
        where = "".join(f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
        problems.append(f"at ${where}: {error.message}")
    return problems
