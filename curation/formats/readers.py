"""Reading bodies and files: JSONL and JSON streamed, the kind of a body or file, what an import would make of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any

import ijson
import orjson

from .examples import UTF8_BOM, BodyTooLarge, Limits, LineError, ParsedExample
from .mapping import ColumnMapping, MappingError, mapping_parse, mapping_suggest
from .shapes import FILE_FORMATS, Row, _decode_error, parse_rows
from .tables import rows_csv, rows_parquet


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
