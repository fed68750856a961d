"""A project's own patterns and JSON schemas, applied so that none of them can hang a process.

An output format's regex and a JSON schema's `pattern` / `patternProperties` are the project's, not ours: on a
backtracking engine (Python's `re`, the `regex` module) `(a|a)+$` takes time that doubles with each character of an
answer, and three live checks of a 24-character answer held every web worker for 36 s. They run on RE2 instead
(google-re2), which matches in time linear in the text and in memory bounded by RE2_MAX_MEM. RE2 has no
backreferences or lookarounds: a pattern that needs them is refused when the project is saved, with the reason.

A JSON schema is a small program too. When it is saved it must pass its meta-schema, compile every pattern in RE2,
resolve every `$ref` inside itself (nothing is fetched from the network or the disk: jsonschema's default registry
would fetch any http(s) or file URL named in a `$ref`), never apply itself to the same value without end
(`{"$ref": "#"}`), and check small answers quickly. Each application to an answer runs under a time budget, and
anything that still goes wrong comes back as `Unchecked` with a message, never as an exception out of a page.

No Django in here: the evaluation's label reader uses it too.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
import types
from collections.abc import Iterator
from typing import Any

import orjson

MAX_PATTERN_CHARS = 4000  # one pattern; a format regex is rarely over a few hundred characters
MAX_SCHEMA_BYTES = 64 * 1024  # one schema, as JSON
RE2_MAX_MEM = 8 << 20  # RE2's budget per compiled pattern (program and DFA cache); past it compiling fails
SCHEMA_SECONDS = 0.5  # one answer checked against a schema
PROBE_SECONDS = 1.0  # all the small answers a schema is tried on when it is saved
PREFIX_SECONDS = 0.02  # finding where an answer stops fitting a regex (partial matching, on a backtracking engine)
RE2_SYNTAX = "https://github.com/google/re2/wiki/Syntax"


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why, in words."""


class Unchecked(Exception):
    """A schema or pattern that could not be applied to an answer; the message says why, in words."""


# --- Regexes ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def regex_compile(pattern: str):
    """The pattern compiled by RE2 (cached). PatternError when RE2 cannot compile it."""
    import re2

    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        why = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error
        raise PatternError(
            f"RE2 cannot compile it ({why}). Patterns run on RE2, which checks an answer in time linear in its "
            "length; it has no backreferences (\\1, (?P=name)), lookarounds ((?=...), (?!...), (?<=...), (?<!...)) "
            f"or verbose mode (?x), and ends the text with \\z rather than \\Z. Syntax: {RE2_SYNTAX}"
        ) from None


def regex_refusal(pattern: str) -> str | None:
    """Why a pattern cannot be used, in words; None when it can."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"it is {len(pattern):,} characters long; the limit is {MAX_PATTERN_CHARS:,}."
    try:
        regex_compile(pattern)
    except PatternError as error:
        return str(error)
    return None


def regex_fitting_prefix(pattern: str, text: str, *, seconds: float = PREFIX_SECONDS) -> int | None:
    """The length of the longest start of `text` that can still grow into a full match: where the answer goes wrong.

    RE2 has no partial matching, so this uses the `regex` module's, under a time budget: None when the budget runs out
    (a pattern with nested repetition can take exponential time here), when `regex` reads the pattern otherwise than
    RE2, or when it cannot read it at all. Only the position in a message depends on it, never whether an answer fits.
    """
    import regex

    deadline = time.monotonic() + seconds

    def viable(end: int) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return compiled.fullmatch(text[:end], partial=True, timeout=left) is not None

    try:
        compiled = regex.compile(pattern)
        if viable(len(text)):
            # RE2 found no full match; if regex finds one, the engines disagree (\d is ASCII in RE2): name no place
            return None if compiled.fullmatch(text, timeout=max(deadline - time.monotonic(), 0.001)) else len(text)
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if viable(middle):
                low = middle
            else:
                high = middle - 1
        return low
    except (regex.error, TimeoutError):
        return None


def _re2_search(pattern: str, string: str):
    return regex_compile(pattern).search(string)


# --- JSON schemas ------------------------------------------------------------------------------------------------

# Where jsonschema applies a schema's patterns it calls `re.search(pattern, text)`, in these functions (jsonschema
# 4.26): the keywords pattern and patternProperties, and the helpers behind additionalProperties and
# unevaluatedProperties (which match patternProperties too). Each is rebuilt over the same code with `re` replaced by
# RE2, so the keywords behave and word their errors exactly as before; tests/security/test_redos.py fails if an
# upgrade adds another path to Python's `re`.
_RE2_AS_RE = types.SimpleNamespace(search=_re2_search)


def _rebound(function, **names):
    namespace = {**function.__globals__, **names}
    copy = types.FunctionType(
        function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    if function.__name__ in namespace and namespace[function.__name__] is function:
        namespace[function.__name__] = copy  # a recursive helper calls its own copy
    return copy


@functools.cache
def _keyword_replacements() -> dict:
    from jsonschema import _keywords, _legacy_keywords, _utils

    additional = _rebound(_utils.find_additional_properties, re=_RE2_AS_RE)
    evaluated = _rebound(_utils.find_evaluated_property_keys_by_schema, re=_RE2_AS_RE)
    evaluated_2019 = _rebound(_legacy_keywords.find_evaluated_property_keys_by_schema, re=_RE2_AS_RE)
    return {
        _keywords.pattern: _rebound(_keywords.pattern, re=_RE2_AS_RE),
        _keywords.patternProperties: _rebound(_keywords.patternProperties, re=_RE2_AS_RE),
        _keywords.additionalProperties: _rebound(_keywords.additionalProperties, find_additional_properties=additional),
        _keywords.unevaluatedProperties: _rebound(
            _keywords.unevaluatedProperties, find_evaluated_property_keys_by_schema=evaluated
        ),
        _legacy_keywords.unevaluatedProperties_draft2019: _rebound(
            _legacy_keywords.unevaluatedProperties_draft2019, find_evaluated_property_keys_by_schema=evaluated_2019
        ),
        # jsonschema compares objects pairwise: 40 s for 5,500 distinct objects in a 60 KB answer.
        _keywords.uniqueItems: _unique_items,
    }


def _unique_items(validator, unique, instance, schema):
    """uniqueItems in one pass over hashable keys, equal where JSON Schema calls values equal (jsonschema's message)."""
    from jsonschema.exceptions import ValidationError

    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for item in instance:
        key = _equality_key(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


def _equality_key(value: Any):
    """1 and 1.0 are equal, true and 1 are not; objects compare by their members, arrays in order."""
    if value is True or value is False or value is None:
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, list):
        return ("array", tuple(_equality_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _equality_key(item)) for key, item in value.items()))
    return ("string", value)


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("schema_deadline", default=None)


class _OverBudget(Exception):
    pass


def _budgeted(keyword):
    """The keyword, refusing to start once the application's time budget is spent (see `_applied`)."""

    def applied(validator, value, instance, schema):
        deadline = _DEADLINE.get()
        if deadline is not None and time.monotonic() > deadline:
            raise _OverBudget
        return keyword(validator, value, instance, schema)

    return applied


@functools.cache
def _safe_class(base):
    """The draft's validator class with RE2 patterns and every keyword under the time budget."""
    from jsonschema import validators

    replaced = _keyword_replacements()
    keywords = {name: _budgeted(replaced.get(keyword, keyword)) for name, keyword in base.VALIDATORS.items()}
    return validators.extend(base, keywords)


def _base_class(schema: dict):
    import warnings

    from jsonschema import validators

    with warnings.catch_warnings():  # an unknown $schema: the latest draft, as jsonschema does, without the warning
        warnings.simplefilter("ignore", DeprecationWarning)
        return validators.validator_for(schema)


def _body(schema: dict) -> dict:
    """The schema without its root `$schema`: jsonschema picks the class of every schema it enters from its `$schema`
    (a `$ref` to "#" included), and a stock class there would match patterns with Python's `re` again. The class is
    chosen once, from the root; `$schema` anywhere else is refused."""
    return {key: value for key, value in schema.items() if key != "$schema"}


class SchemaValidator:
    """A schema ready to check answers: RE2 patterns, references inside the schema only, a time budget per answer."""

    def __init__(self, schema: dict):
        refusal = _schema_refusal_cached(_canonical(schema))
        if refusal:
            raise Unchecked(refusal)
        self._validator = _validator(schema)

    def errors(self, instance: Any, *, seconds: float = SCHEMA_SECONDS) -> list:
        """Every ValidationError of the instance; Unchecked when the schema could not be applied in `seconds`."""
        with _applied(seconds):
            return list(self._validator.iter_errors(instance))

    def fits(self, instance: Any, *, seconds: float = SCHEMA_SECONDS) -> bool:
        with _applied(seconds):
            return self._validator.is_valid(instance)


@contextlib.contextmanager
def _applied(seconds: float):
    """The time budget around one application of a schema, and its failures in words."""
    from referencing.exceptions import Unresolvable

    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    except Unchecked:
        raise
    except _OverBudget:
        raise Unchecked(
            f"checking took longer than {seconds:g} s (references that fan out, each applying the next several times, "
            "take exponential time)."
        ) from None
    except RecursionError:
        raise Unchecked(
            "the schema applies itself to the same value without end, or the answer is nested too deeply to check."
        ) from None
    except Unresolvable as error:
        raise Unchecked(f"a `$ref` does not resolve ({error}).") from None
    except PatternError as error:
        raise Unchecked(f"one of its patterns cannot be used: {error}") from None
    except Exception as error:
        # A schema is the project's program: whatever else it makes jsonschema raise is its problem, said in words.
        raise Unchecked(f"the schema could not be applied ({type(error).__name__}: {error}).") from None
    finally:
        _DEADLINE.reset(token)


def _canonical(schema: Any) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)


@functools.lru_cache(maxsize=128)
def _schema_refusal_cached(canonical: bytes) -> str | None:
    return schema_refusal(orjson.loads(canonical))


# Keywords whose value holds subschemas: applied to the same value (in place), or to a part of it.
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf", "extends", "type", "disallow")  # the last three: draft 3
_IN_PLACE_MAP = ("dependentSchemas", "dependencies")
_PART_ONE = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "contentSchema",
)
_PART_MANY = ("items", "prefixItems")
_PART_MAP = ("properties", "patternProperties")
_DEFINITIONS = ("$defs", "definitions")
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


def _subschemas(node: dict, where: str) -> Iterator[tuple[Any, str, bool]]:
    """(subschema, where it is, applied in place) for each subschema written in `node`; references apart."""

    def many(key: str, value: Any, in_place: bool):
        if isinstance(value, dict):
            yield value, f"{where}/{key}", in_place
        elif isinstance(value, list):
            yield from ((item, f"{where}/{key}/{i}", in_place) for i, item in enumerate(value))

    for key in _IN_PLACE_ONE + _PART_ONE:
        if isinstance(node.get(key), dict):
            yield node[key], f"{where}/{key}", key in _IN_PLACE_ONE
    for key in _IN_PLACE_MANY + _PART_MANY:
        if key not in _PART_ONE or isinstance(node.get(key), list):
            yield from many(key, node.get(key), key in _IN_PLACE_MANY)
    for key in _IN_PLACE_MAP + _PART_MAP + _DEFINITIONS:
        if isinstance(node.get(key), dict):
            for name, value in node[key].items():
                yield value, f"{where}/{key}/{name}", key in _IN_PLACE_MAP


def schema_refusal(schema: Any) -> str | None:
    """Why a JSON schema cannot be a project's output format, in words; None when it can (see the module's doc)."""
    if not isinstance(schema, dict):
        return "a schema is a JSON object."
    size = len(_canonical(schema))
    if size > MAX_SCHEMA_BYTES:
        return f"it is {size:,} bytes as JSON; the limit is {MAX_SCHEMA_BYTES:,}."
    try:
        return _structure_refusal(schema) or _meta_refusal(schema) or _probe_refusal(schema)
    except RecursionError:
        return "it is nested too deeply."


def _structure_refusal(schema: dict) -> str | None:
    """Patterns RE2 cannot compile, `$schema` below the root, references that leave the schema or do not resolve,
    and subschemas that apply themselves to the same value without end."""
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import specification_with

    base = _base_class(schema)
    body = _body(schema)
    specification = specification_with(base.ID_OF(base.META_SCHEMA))
    resolver = Registry().resolver_with_root(specification.create_resource(body))

    nodes: dict[int, tuple[dict, Any, str]] = {}  # id -> (node, resolver in its scope, where)
    edges: dict[int, list[tuple[int, str]]] = {}  # id -> in-place successors (id, where)
    pending = [(body, resolver, "#")]
    while pending:
        node, scope, where = pending.pop()
        if not isinstance(node, dict) or id(node) in nodes:
            continue
        nodes[id(node)] = (node, scope, where)
        if node is not body and "$schema" in node:
            return f"`$schema` at {where}: only the root of the schema may name its draft."
        if isinstance(node.get("pattern"), str) and (why := regex_refusal(node["pattern"])):
            return f"the pattern {node['pattern']!r} at {where}: {why}"
        if isinstance(node.get("patternProperties"), dict):
            for key in node["patternProperties"]:
                if why := regex_refusal(key):
                    return f"the patternProperties key {key!r} at {where}: {why}"
        scope = scope.in_subresource(specification.create_resource(node))
        successors = edges.setdefault(id(node), [])
        for key in _REFERENCES:
            reference = node.get(key)
            if not isinstance(reference, str):
                continue
            try:
                resolved = scope.lookup(reference)
            except Unresolvable:
                return (
                    f"the {key} {reference!r} at {where} does not resolve: references must point inside the schema "
                    '(such as "#/$defs/name"); nothing is fetched from elsewhere.'
                )
            target = reference if reference.startswith("#") else f"{where}/{key}"
            pending.append((resolved.contents, resolved.resolver, target))
            successors.append((id(resolved.contents), f"{where}/{key} ({reference})"))
        for subschema, at, in_place in _subschemas(node, where):
            pending.append((subschema, scope, at))
            if in_place:
                successors.append((id(subschema), at))
    return _loop_refusal(edges)


def _loop_refusal(edges: dict[int, list[tuple[int, str]]]) -> str | None:
    """A cycle among subschemas applied to the same value (an iterative depth-first search)."""
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        on_path = {start}
        stack = [(start, iter(edges.get(start, ())))]
        while stack:
            node, successors = stack[-1]
            for successor, where in successors:
                if successor in on_path:
                    return (
                        f"it applies itself to the same value without end (through {where}): a `$ref` may come back "
                        "to a schema it starts from only below a keyword that goes into a part of the value, such as "
                        '"properties" or "items".'
                    )
                if successor not in done and successor in edges:
                    on_path.add(successor)
                    stack.append((successor, iter(edges[successor])))
                    break
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)
    return None


def _meta_refusal(schema: dict) -> str | None:
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("regex", raises=PatternError)(lambda value: not isinstance(value, str) or bool(regex_compile(value)))
    try:
        _base_class(schema).check_schema(schema, format_checker=checker)
    except jsonschema.SchemaError as error:
        return f"it is not a valid JSON Schema: {error.message}."
    return None


_PROBES = (None, False, 0, 1.5, "", "a", [], [None, "a"], {}, {"a": None})


def _probe_refusal(schema: dict) -> str | None:
    """Small answers of every JSON type, checked under one time budget: a schema whose references fan out
    exponentially (each definition applying the previous one twice) shows here rather than on the review page."""
    try:
        validator = _validator(schema)
        with _applied(PROBE_SECONDS):
            for probe in _PROBES:
                validator.is_valid(probe)
    except Unchecked as error:
        return f"it cannot check even a small answer: {error}"
    return None


def _validator(schema: dict):
    from referencing import Registry

    # An empty registry retrieves nothing: jsonschema's default one fetches any http(s) or file URL a `$ref` names.
    return _safe_class(_base_class(schema))(_body(schema), registry=Registry())
