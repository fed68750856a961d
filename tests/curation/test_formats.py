"""The line parser: every refusal has a code and a line number; every accepted format normalises to OpenAI chat."""

import io

import orjson
import pytest

from curation import formats

from ..helpers import chat

LIMITS = formats.Limits(max_line_bytes=2000, max_tokens=200, max_depth=8)
LABELS = frozenset({"P1", "P2", "P3", "P4"})
OK = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def parse(raw: bytes | str, fmt: str = "auto"):
    raw = raw.encode() if isinstance(raw, str) else raw
    return formats.parse_line(raw, 7, fmt=fmt, labels=LABELS, limits=LIMITS)


def line(obj) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{not json", "invalid_json"),
        (b'{"messages": [}', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (line({"text": "hi"}), "missing_messages"),
        (line({"messages": "hi"}), "messages_not_list"),
        (line({"messages": []}), "empty_messages"),
        (line({"messages": ["hi"]}), "message_not_object"),
        (line({"messages": [{"content": "hi"}]}), "missing_role"),
        (line({"messages": [{"role": "user"}]}), "missing_content"),
        (line({"messages": [{"role": "user", "content": "x", "mood": "sad"}, *OK]}), "unknown_key"),
        (line({"messages": OK, "extra": 1}), "unknown_key"),
        (line({"messages": [{"role": "robot", "content": "x"}, *OK]}), "unknown_role"),
        (line({"messages": [{"role": "user", "content": 5}, *OK]}), "content_not_string"),
        (line({"messages": [{"role": "user", "content": "  \n "}, *OK]}), "empty_content"),
        (line({"messages": [{"role": "user", "content": "hi"}]}), "no_assistant_message"),
        (line({"messages": [{"role": "user", "content": "x" * 1000}, *OK]}), "too_many_tokens"),
        (b'{"messages": "\xff\xfe"}', "invalid_utf8"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (line({"messages": OK, "metadata": {"a": [[[[[[[[[[1]]]]]]]]]]}}), "too_deep"),
        (line({"messages": OK, "metadata": [1]}), "invalid_metadata"),
        (line({"messages": OK, "label": "P9"}), "unknown_label"),
        (line({"messages": OK, "label": 3}), "invalid_label"),
        (line({"messages": OK, "tags": "edge_case"}), "invalid_tags"),
        (line({"messages": [{"role": "user", "content": "x", "weight": 5}, *OK]}), "invalid_weight"),
        (line({"messages": OK, "id": {"nested": True}}), "invalid_id"),
        (line({"messages": [{"role": "user", "content": "a\u0000b"}, *OK]}), "null_character"),
        (line({"messages": OK, "metadata": {"k": ["\u0000"]}}), "null_character"),
        (line({"messages": OK, "tags": ["a\u0000"]}), "null_character"),
    ],
)
def test_each_refusal_has_a_code_and_the_line_number(raw, code):
    result = parse(raw)
    assert isinstance(result, formats.LineError), result
    assert (result.line, result.code) == (7, code)
    assert result.message


def test_a_valid_line_is_normalised_with_label_and_tags_from_metadata():
    result = parse(line({"messages": OK, "metadata": {"label": "P2", "tags": ["edge_case", "edge_case"], "src": 1}}))
    assert isinstance(result, formats.ParsedExample)
    assert result.label == "P2"
    assert result.tags == ["edge_case"]
    assert result.metadata == {"src": 1}
    assert len(result.content_hash) == 64


def test_hash_ignores_key_order_and_label():
    a = parse(line({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}))
    b = parse(
        line({"label": "P1", "messages": [{"content": "hi", "role": "user"}, {"content": "yo", "role": "assistant"}]})
    )
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    "obj, fmt",
    [
        ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}, "sharegpt"),
        ({"instruction": "hi", "output": "hello"}, "alpaca"),
        ({"prompt": "hi", "completion": "hello"}, "prompt_completion"),
        (
            {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "hello"}]},
            "prompt_completion",
        ),
    ],
)
def test_other_formats_become_openai_messages(obj, fmt):
    for requested in ("auto", fmt):
        result = parse(line(obj), fmt=requested)
        assert isinstance(result, formats.ParsedExample), result
        assert result.messages == OK


def test_alpaca_input_and_system_are_kept():
    result = parse(line({"system": "Be brief.", "instruction": "Sum", "input": "1 2", "output": "3"}))
    assert result.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Sum\n\n1 2"},
        {"role": "assistant", "content": "3"},
    ]


def test_a_forced_format_refuses_other_shapes():
    result = parse(line({"messages": OK}), fmt="alpaca")
    assert isinstance(result, formats.LineError) and result.code == "unknown_key"


def test_reader_numbers_lines_skips_blank_ones_and_strips_a_bom():
    body = formats.UTF8_BOM + line({"messages": OK}) + b"\n\n   \n" + b"{oops\n" + line({"messages": OK}) + b"\r\n"
    results = list(formats.read_jsonl(io.BytesIO(body), fmt="auto", labels=LABELS, limits=LIMITS, max_body_bytes=10**6))
    assert [(r.line, type(r).__name__) for r in results] == [
        (1, "ParsedExample"),
        (4, "LineError"),
        (5, "ParsedExample"),
    ]


def test_reader_refuses_an_oversized_line_without_holding_it():
    big = line({"messages": [{"role": "user", "content": "x" * 5000}, *OK]})
    body = line({"messages": OK}) + b"\n" + big + b"\n" + line({"messages": OK}) + b"\n"
    results = list(formats.read_jsonl(io.BytesIO(body), fmt="auto", labels=LABELS, limits=LIMITS, max_body_bytes=10**6))
    assert [(r.line, getattr(r, "code", "ok")) for r in results] == [(1, "ok"), (2, "line_too_long"), (3, "ok")]


def test_reader_stops_past_the_body_limit():
    body = (line({"messages": OK}) + b"\n") * 100
    with pytest.raises(formats.BodyTooLarge):
        list(formats.read_jsonl(io.BytesIO(body), fmt="auto", labels=LABELS, limits=LIMITS, max_body_bytes=500))


def test_json_document_positions_count_as_lines():
    body = orjson.dumps([{"messages": OK}, {"messages": []}])
    results = list(formats.read_json_document(body, fmt="auto", labels=LABELS, limits=LIMITS))
    assert isinstance(results[0], formats.ParsedExample)
    assert (results[1].line, results[1].code) == (2, "empty_messages")


def test_export_line_round_trips_through_the_parser():
    exported = formats.example_to_json_line(OK, "P3", ["edge_case"], {"k": "v"}, messages_only=False)
    result = parse(exported.strip())
    assert (result.messages, result.label, result.tags, result.metadata) == (OK, "P3", ["edge_case"], {"k": "v"})
    assert orjson.loads(formats.example_to_json_line(OK, "P3", [], {}, messages_only=True)) == {"messages": OK}


@pytest.mark.parametrize("chunk_bytes", [1, 2, 7, 64, 1 << 20])
def test_reader_gives_the_same_lines_whatever_the_chunk_size(chunk_bytes):
    long_line = b"x" * 40
    body = formats.UTF8_BOM + b'{"a": 1}\n\n  \r\n' + long_line + b'\n{"b": 2}\r\n' + long_line + b"\n" + b'{"c": 3}'
    lines = list(formats.read_lines(io.BytesIO(body), max_line_bytes=30, max_body_bytes=10**6, chunk_bytes=chunk_bytes))
    assert lines == [(1, b'{"a": 1}'), (4, None), (5, b'{"b": 2}\r'), (6, None), (7, b'{"c": 3}')]


SPEC = {"kind": "regex", "pattern": r"SEVERITY: P[1-4]\nIMPACT: [^\n]+\nACTION: [^\n]+"}


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("SEVERITY: P1\nIMPACT: down\nACTION: page", []),
        ("SEVERITY: P1\nIMPCT: down\nACTION: page", ["line 2, column 4 does not fit the format: 'IMPCT: down'."]),
        ("SEVERITY: P7\nIMPACT: x\nACTION: y", ["line 1, column 12 does not fit the format: 'SEVERITY: P7'."]),
        (
            "SEVERITY: P1\nIMPACT: down",
            ["the answer stops too early: it matches the format up to its end (line 2, column 13)."],
        ),
    ],
)
def test_answer_violations_are_named_by_line_and_column(answer, expected):
    assert formats.answer_violations(SPEC, answer) == expected


def test_answer_violations_for_json_schema_and_none():
    schema = {
        "kind": "json_schema",
        "schema": {"type": "object", "required": ["severity"], "properties": {"severity": {"enum": ["P1", "P2"]}}},
    }
    assert formats.answer_violations(schema, '{"severity": "P1"}') == []
    assert formats.answer_violations(schema, '{"severity": "P9"}') == [
        "at $.severity: 'P9' is not one of ['P1', 'P2'] (the schema's #/properties/severity/enum, keyword \"enum\")"
    ]
    assert formats.answer_violations(schema, "{oops")[0].startswith("the answer is not valid JSON")
    assert formats.answer_violations({"kind": "none"}, "anything") == []


def test_a_json_array_is_read_an_element_at_a_time():
    """The first example comes out before the rest of the body is read (it used to be parsed whole: a 30 MB array
    took a worker from 108 to 489 MB); a truncated array keeps the elements before the break."""
    first = orjson.dumps(chat("first"))

    class Body:
        def __init__(self):
            self.parts = [b"[" + first + b",", b"NOT READ YET"]

        def read(self, size=-1):
            return self.parts.pop(0) if self.parts else b""

    body = Body()
    rows = formats.read_rows("json", body, limits=LIMITS, max_body_bytes=1 << 20)
    line, element = next(rows)
    assert (line, element["messages"][1]["content"]) == (1, "first")
    assert body.parts == [b"NOT READ YET"]
    error = list(rows)[-1]
    assert isinstance(error, formats.LineError) and (error.line, error.code) == (2, "invalid_json")


def test_a_json_array_nested_past_the_limit_is_refused_without_building_it():
    body = io.BytesIO(b"[" + orjson.dumps(chat("ok")) + b"," + b"[" * 200_000 + b"]" * 200_000 + b"]")
    rows = list(formats.read_rows("json", body, limits=LIMITS, max_body_bytes=1 << 30))
    assert rows[0][0] == 1 and isinstance(rows[1], formats.LineError) and rows[1].code == "too_deep"
