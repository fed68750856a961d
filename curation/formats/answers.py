"""An assistant's answer checked against the project's output format: a regex (RE2) or a JSON schema."""

from __future__ import annotations

import orjson

from .. import patterns
from .examples import _DECODE_POSITION


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
