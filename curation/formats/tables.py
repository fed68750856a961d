"""Tables read as rows: CSV (a header row gives the keys) and Parquet (the columns are the keys), streamed."""

from __future__ import annotations

import csv
import datetime
import decimal
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import orjson

from .examples import UTF8_BOM, BodyTooLarge, Limits, LineError
from .shapes import Row

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
