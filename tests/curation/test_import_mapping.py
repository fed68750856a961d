"""Reading rows in other shapes (pure, no database): the column mapping, its suggester, CSV and Parquet readers."""

import datetime
import decimal
import io

import orjson
import pytest

from curation import formats

LIMITS = formats.Limits(max_line_bytes=2000, max_tokens=500, max_depth=8)
LABELS = ["P1", "P2", "P3", "P4"]


def mapped(rows, mapping: str | dict, kind: str = "jsonl", body: bytes | None = None):
    column_mapping = formats.mapping_parse(mapping if isinstance(mapping, str) else orjson.dumps(mapping))
    if body is None:
        body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    results = formats.read_input(
        kind, io.BytesIO(body), fmt="auto", labels=LABELS, limits=LIMITS, max_body_bytes=10**6, mapping=column_mapping
    )
    return list(results), column_mapping


@pytest.mark.parametrize(
    "keys, suggestion",
    [
        (
            ["instruction", "context", "response", "category"],
            {"user": ["instruction", "context"], "assistant": "response", "label": "category"},
        ),
        (["Question", "Answer", "id"], {"user": "Question", "assistant": "Answer", "metadata": ["id"]}),
        (["input", "output"], {"user": "input", "assistant": "output"}),
        (["instruction", "input", "output"], {"user": ["instruction", "input"], "assistant": "output"}),
        (
            ["system_prompt", "query", "document", "completion", "class", "source", "lang"],
            {
                "system": "system_prompt",
                "user": ["query", "document"],
                "assistant": "completion",
                "label": "class",
                "metadata": ["source", "lang"],
            },
        ),
        (["Prompt", "System Prompt", "reply"], {"system": "System Prompt", "user": "Prompt", "assistant": "reply"}),
        (["title", "body"], {"metadata": ["title", "body"]}),
    ],
)
def test_the_suggester_recognises_common_names(keys, suggestion):
    assert formats.mapping_suggest(keys) == suggestion


def test_a_mapping_reads_back_as_written():
    spec = {"system": "sys", "user": ["a", "b"], "assistant": "c", "label": "d", "metadata": ["e"]}
    assert formats.mapping_parse(orjson.dumps(spec)).as_dict() == spec
    assert formats.mapping_parse(spec).as_dict() == spec


def test_several_user_keys_join_with_a_blank_line_and_empty_ones_are_skipped():
    rows = [
        {"q": "first", "ctx": "  ", "more": "second", "a": "answer"},
        {"q": "first", "ctx": None, "more": 3, "a": 42},  # numbers are text too
    ]
    results, _ = mapped(rows, {"user": ["q", "ctx", "more"], "assistant": "a"})
    assert [r.messages[0]["content"] for r in results] == ["first\n\nsecond", "first\n\n3"]
    assert results[1].messages[1]["content"] == "42"


def test_mapped_labels_go_through_the_label_checks():
    rows = [{"q": "x", "a": "y", "c": 2}, {"q": "x", "a": "z", "c": "P9"}, {"q": "x", "a": "w", "c": ["P1"]}]
    results, _ = mapped(rows, {"user": "q", "assistant": "a", "label": "c"})
    # A number becomes text ("2"), then meets the label set like any label.
    assert [r.code for r in results] == ["unknown_label", "unknown_label", "invalid_label"]


def test_unmapped_keys_are_ignored_and_counted_once_per_row():
    rows = [{"q": "x", "a": "y", "extra": 1, "more": 2}, {"q": "x2", "a": "y", "extra": 1}]
    results, mapping = mapped(rows, {"user": "q", "assistant": "a", "metadata": ["more"]})
    assert all(isinstance(r, formats.ParsedExample) for r in results)
    assert (results[0].metadata, results[1].metadata) == ({"more": 2}, {})
    assert dict(mapping.ignored) == {"extra": 2}


def test_a_mapped_system_key_may_be_empty():
    results, _ = mapped([{"s": "", "q": "x", "a": "y"}, {"s": "Be brief.", "q": "x", "a": "y"}], '{"system": "s",'
                        ' "user": "q", "assistant": "a"}')  # fmt: skip
    assert [m["role"] for m in results[0].messages] == ["user", "assistant"]
    assert results[1].messages[0] == {"role": "system", "content": "Be brief."}


def test_csv_lines_are_the_records_physical_lines():
    body = b'\xef\xbb\xbfq,a\r\n"two\r\nlines",ok\r\n\r\nx,\r\n"three\n\nlines",fine\nlast,one'
    results, _ = mapped(None, {"user": "q", "assistant": "a"}, "csv", body)
    assert [(r.line, getattr(r, "code", "ok")) for r in results] == [
        (2, "ok"),
        (5, "missing_value"),
        (6, "ok"),
        (9, "ok"),
    ]
    assert results[0].messages[0]["content"] == "two\r\nlines"
    assert results[2].messages[0]["content"] == "three\n\nlines"


def test_a_csv_header_names_each_column_once():
    rows = list(formats.rows_csv(io.BytesIO(b"q,a,q\n1,2,3\n"), limits=LIMITS, max_body_bytes=10**6))
    assert [(r.line, r.code) for r in rows] == [(1, "invalid_header")]
    rows = list(formats.rows_csv(io.BytesIO(b",q,a\n0,x,y\n"), limits=LIMITS, max_body_bytes=10**6))
    assert rows == [(2, {"column_1": "0", "q": "x", "a": "y"})]


@pytest.mark.parametrize("chunk_bytes", [1, 5, 64, 1 << 20])
def test_an_oversized_csv_line_spoils_only_its_record_whatever_the_chunk_size(chunk_bytes):
    body = b"\xef\xbb\xbfq,a\r\nfirst,ok\r\n" + b"x" * 3000 + b',y\n"caf\xe9",z\n\n' + b"x" * 2500
    rows = list(formats.rows_csv(io.BytesIO(body), limits=LIMITS, max_body_bytes=10**6, chunk_bytes=chunk_bytes))
    assert [row if isinstance(row, tuple) else (row.line, row.code) for row in rows] == [
        (2, {"q": "first", "a": "ok"}),
        (3, "line_too_long"),
        (4, "invalid_utf8"),
        (6, "line_too_long"),
    ]


def test_csv_in_the_chat_format_with_json_cells_needs_no_mapping():
    messages = [{"role": "user", "content": "db down, again"}, {"role": "assistant", "content": "SEVERITY: P1"}]
    cell = orjson.dumps(messages).decode().replace('"', '""')
    body = f'messages,label,tags,id\n"{cell}",P1,"[""edge_case""]",\n'.encode()
    results = list(
        formats.read_input("csv", io.BytesIO(body), fmt="csv", labels=LABELS, limits=LIMITS, max_body_bytes=10**6)
    )
    assert len(results) == 1 and isinstance(results[0], formats.ParsedExample), results
    assert (results[0].messages, results[0].label, results[0].tags) == (messages, "P1", ["edge_case"])


def test_parquet_values_json_cannot_hold_become_text():
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "q": "x",
            "a": "y",
            "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
            "price": decimal.Decimal("1.50"),
            "blob": b"raw",
            "klass": 3,
        }
    ]
    schema = pa.schema(
        [
            ("q", pa.string()),
            ("a", pa.string()),
            ("when", pa.timestamp("s")),
            ("price", pa.decimal128(5, 2)),
            ("blob", pa.binary()),
            ("klass", pa.int64()),
        ]
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    spec = {"user": "q", "assistant": "a", "label": "klass", "metadata": ["when", "price", "blob"]}
    results = list(
        formats.parse_rows(
            formats.rows_parquet(io.BytesIO(buffer.getvalue()), max_body_bytes=10**6),
            fmt="auto",
            labels=[],
            limits=LIMITS,
            mapping=formats.mapping_parse(orjson.dumps(spec)),
        )
    )
    assert results[0].label == "3"
    assert results[0].metadata == {"when": "2026-01-02T03:04:05", "price": "1.50", "blob": "raw"}
    orjson.dumps(results[0].metadata)  # storable as it is


def test_parquet_chat_rows_need_no_mapping_and_a_body_that_cannot_seek_is_spooled():
    import pyarrow as pa
    import pyarrow.parquet as pq

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"messages": messages, "label": None}]), buffer)

    class Unseekable:
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def read(self, size=-1):
            return self._data.read(size)

    results = list(
        formats.read_input(
            "parquet", Unseekable(buffer.getvalue()), fmt="auto", labels=[], limits=LIMITS, max_body_bytes=10**6
        )
    )
    assert [(r.messages, r.label) for r in results] == [(messages, "")]
    with pytest.raises(formats.BodyTooLarge):
        list(formats.rows_parquet(Unseekable(buffer.getvalue()), max_body_bytes=100))


def test_the_preview_of_rows_the_product_reads_as_they_are():
    body = orjson.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    rows = formats.read_rows("jsonl", io.BytesIO(body), limits=LIMITS, max_body_bytes=10**6)
    preview = formats.import_preview(rows, labels=LABELS, limits=LIMITS)
    assert (preview["keys"], preview["needs_mapping"], preview["suggested_mapping"], preview["mapping"]) == (
        ["messages"],
        False,
        None,
        None,
    )
    assert preview["rows"][0]["example"]["messages"][1]["content"] == "b"


@pytest.mark.parametrize(
    "kwargs, kind",
    [
        ({"name": "a.csv"}, "csv"),
        ({"name": "a.PARQUET"}, "parquet"),
        ({"name": "blob", "head": b"PAR1\x15\x04"}, "parquet"),
        ({"name": "a.json"}, "json"),
        ({"name": "a.txt", "head": b"  ["}, "json"),
        ({"name": "a.jsonl", "content_type": "text/csv"}, "jsonl"),
        ({"name": "upload", "content_type": "text/csv"}, "csv"),
        ({"name": "a.jsonl", "requested": "csv"}, "csv"),
        ({"name": "a"}, "jsonl"),
    ],
)
def test_which_reader_a_file_gets(kwargs, kind):
    assert formats.file_kind(**kwargs) == kind


@pytest.mark.parametrize(
    "content_type, requested, kind",
    [
        ("text/csv; charset=utf-8", "auto", "csv"),
        ("application/vnd.apache.parquet", "auto", "parquet"),
        ("application/x-parquet", "auto", "parquet"),
        ("application/octet-stream", "parquet", "parquet"),
        ("application/octet-stream", "auto", None),
        ("application/jsonl", "auto", "jsonl"),
    ],
)
def test_which_reader_a_body_gets(content_type, requested, kind):
    assert formats.body_kind(requested=requested, content_type=content_type) == kind


def test_a_nul_in_mapped_text_or_metadata_is_refused():
    rows = [
        {"q": "x\u0000", "a": "y"},
        {"q": "x", "a": "y", "m": "bad\u0000"},
        {"q": "x", "a": "y", "m": {"deep": ["bad\u0000"]}},
        {"q": "x", "a": "y", "m": {"deep": ["fine"]}},
    ]
    results, _ = mapped(rows, {"user": "q", "assistant": "a", "metadata": ["m"]})
    assert [getattr(r, "code", "ok") for r in results] == ["null_character"] * 3 + ["ok"]
