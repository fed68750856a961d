"""Column mappings: which keys of a flat row make the system prompt, the user's turn, the answer, label and metadata."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .examples import (
    _DECODE_POSITION,
    InvalidExample,
    Limits,
    ParsedExample,
    _too_deep,
    content_hash,
    has_nul,
    label_clean,
    messages_dump,
    validate_messages,
)

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
