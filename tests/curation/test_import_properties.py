"""Hostile import input, as properties (hypothesis): any bytes give examples or line-numbered errors, never a
crash; through the API, never a 5xx, and an atomic import with an error writes nothing."""

import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation import formats
from curation.models import Example

from ..helpers import chat, jsonl, post_jsonl

# The same cases every run, so that CI is repeatable; FINELINE_FUZZ_RANDOM=1 explores new ones.
DERANDOMIZE = os.environ.get("FINELINE_FUZZ_RANDOM") != "1"
LIMITS = formats.Limits(max_line_bytes=4096, max_tokens=2048, max_depth=8)
CODES = {
    "invalid_json", "invalid_utf8", "too_deep", "line_too_long", "not_an_object", "missing_messages",
    "messages_not_list", "empty_messages", "message_not_object", "missing_role", "missing_content", "unknown_key",
    "unknown_role", "content_not_string", "empty_content", "no_assistant_message", "too_many_tokens",
    "invalid_label", "unknown_label", "invalid_tags", "invalid_metadata", "invalid_name", "invalid_weight",
    "invalid_id", "null_character", "unknown_format", "missing_value", "invalid_csv", "csv_columns", "invalid_header",
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "", "USER"])
messages = st.lists(
    st.fixed_dictionaries({"role": roles, "content": st.one_of(st.text(max_size=40), json_values)}), max_size=4
)
near_valid = st.fixed_dictionaries(
    {"messages": messages},
    optional={"label": json_values, "tags": json_values, "metadata": json_values, "id": json_values},
)
lines = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
    st.just(json.dumps(chat("a valid ticket")).encode()),
)
bodies = st.lists(lines, max_size=8).map(lambda parts: b"\n".join(parts))


def check(results, body: bytes) -> None:
    count = body.count(b"\n") + 1
    for result in results:
        assert isinstance(result, formats.ParsedExample | formats.LineError)
        assert 1 <= result.line <= count
        if isinstance(result, formats.LineError):
            assert result.code in CODES, result
            assert result.message


@given(body=bodies)
@settings(max_examples=400, deadline=None, derandomize=DERANDOMIZE)
def test_any_jsonl_body_gives_examples_or_line_numbered_errors(body):
    options = {"fmt": "auto", "labels": ["P1", "P2"], "limits": LIMITS}
    check(list(formats.read_jsonl(io.BytesIO(body), max_body_bytes=10**6, **options)), body)


@given(body=st.binary(max_size=600) | bodies)
@settings(max_examples=300, deadline=None, derandomize=DERANDOMIZE)
def test_any_json_document_gives_examples_or_errors(body):
    results = list(formats.read_json_document(body, fmt="auto", labels=[], limits=LIMITS))
    assert all(isinstance(r, formats.ParsedExample | formats.LineError) for r in results)


@pytest.mark.django_db
@given(body=bodies)
@settings(max_examples=60, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=list(HealthCheck))
def test_the_import_api_never_fails_and_an_atomic_error_writes_nothing(project, lead_api, body):
    before = Example.objects.filter(project=project).count()
    response = post_jsonl(lead_api, project.slug, body)
    assert response.status_code in (201, 400), response.content
    report = response.json()
    if not body:  # refused before any import starts: no report, nothing written
        assert (response.status_code, report["code"]) == (400, "empty_body")
    elif response.status_code == 400:
        assert Example.objects.filter(project=project).count() == before
        assert report["status"] == "failed"
        # Line 0 is the input as a whole: only an input without a single line says so.
        for error in report["errors"]:
            assert isinstance(error["line"], int) and (error["line"] >= 1 or error["code"] == "no_examples")
    else:
        assert (report["status"], report["rejected"]) == ("succeeded", 0)


csv_cells = st.text(alphabet=st.sampled_from('ab ,"\n\r\x00é'), max_size=12)
csv_bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(csv_cells, min_size=1, max_size=4), max_size=6).map(
        lambda rows: "\n".join(",".join(row) for row in [["question", "answer", "label"], *rows]).encode()
    ),
)
MAPPING = formats.mapping_parse('{"user": "question", "assistant": ["answer"], "label": "label", "metadata": ["x"]}')


@given(body=csv_bodies, chunk=st.sampled_from([1, 7, 1 << 20]))
@settings(max_examples=300, deadline=None, derandomize=DERANDOMIZE)
def test_any_csv_body_gives_examples_or_line_numbered_errors(body, chunk):
    rows = list(formats.rows_csv(io.BytesIO(body), limits=LIMITS, max_body_bytes=10**6, chunk_bytes=chunk))
    check(list(formats.parse_rows(rows, fmt="auto", labels=["P1"], limits=LIMITS, mapping=MAPPING)), body)
    check(list(formats.parse_rows(rows, fmt="auto", labels=["P1"], limits=LIMITS)), body)
    # However the body is cut into chunks, the same rows come out.
    assert rows == list(formats.rows_csv(io.BytesIO(body), limits=LIMITS, max_body_bytes=10**6))


@given(body=bodies)
@settings(max_examples=200, deadline=None, derandomize=DERANDOMIZE)
def test_any_jsonl_body_through_a_mapping_gives_examples_or_errors(body):
    options = {"fmt": "auto", "labels": ["P1", "P2"], "limits": LIMITS, "mapping": MAPPING}
    check(list(formats.read_jsonl(io.BytesIO(body), max_body_bytes=10**6, **options)), body)


@pytest.mark.django_db
def test_a_valid_file_still_imports(project, lead_api):
    assert post_jsonl(lead_api, project.slug, jsonl([chat("one"), chat("two")])).status_code == 201
