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

The modules: examples (one example's rules and results), shapes (the chat formats, detected), mapping (column
mappings), tables (CSV and Parquet rows), readers (JSONL and JSON, the kind of a body or file, the preview) and
answers (an answer against the output format). Callers use `from curation import formats` and find them all here.
"""

from .answers import answer_checker, answer_violations, last_answer
from .examples import (
    BYTES_PER_TOKEN,
    MAX_LABEL_LENGTH,
    MAX_TAG_LENGTH,
    MESSAGE_KEYS,
    ROLES,
    UTF8_BOM,
    BodyTooLarge,
    InvalidExample,
    Limits,
    LineError,
    ParsedExample,
    content_hash,
    example_to_json_line,
    has_nul,
    label_clean,
    messages_dump,
    metadata_clean,
    printable,
    tags_clean,
    validate_messages,
)
from .mapping import (
    MAPPING_EXAMPLE,
    MAPPING_TARGETS,
    MAX_IGNORED_KEYS,
    MAX_KEY_NAME,
    MAX_MAPPED_KEYS,
    ColumnMapping,
    MappingError,
    example_from_row,
    mapping_hint,
    mapping_parse,
    mapping_suggest,
)
from .readers import (
    CSV_TYPES,
    JSONL_TYPES,
    PARQUET_MAGIC,
    PARQUET_TYPES,
    body_kind,
    file_kind,
    import_preview,
    read_input,
    read_json_document,
    read_jsonl,
    read_lines,
    read_rows,
    rows_json_document,
    rows_jsonl,
)
from .shapes import (
    COMMON_KEYS,
    FILE_FORMATS,
    FORMAT_KEYS,
    FORMATS,
    SHAREGPT_ROLES,
    Row,
    detect_format,
    example_from_object,
    parse_line,
    parse_object,
    parse_rows,
)
from .tables import rows_csv, rows_parquet

__all__ = [
    "BYTES_PER_TOKEN",
    "BodyTooLarge",
    "COMMON_KEYS",
    "CSV_TYPES",
    "ColumnMapping",
    "FILE_FORMATS",
    "FORMATS",
    "FORMAT_KEYS",
    "InvalidExample",
    "JSONL_TYPES",
    "Limits",
    "LineError",
    "MAPPING_EXAMPLE",
    "MAPPING_TARGETS",
    "MAX_IGNORED_KEYS",
    "MAX_KEY_NAME",
    "MAX_LABEL_LENGTH",
    "MAX_MAPPED_KEYS",
    "MAX_TAG_LENGTH",
    "MESSAGE_KEYS",
    "MappingError",
    "PARQUET_MAGIC",
    "PARQUET_TYPES",
    "ParsedExample",
    "ROLES",
    "Row",
    "SHAREGPT_ROLES",
    "UTF8_BOM",
    "answer_checker",
    "answer_violations",
    "body_kind",
    "content_hash",
    "detect_format",
    "example_from_object",
    "example_from_row",
    "example_to_json_line",
    "file_kind",
    "has_nul",
    "import_preview",
    "label_clean",
    "last_answer",
    "mapping_hint",
    "mapping_parse",
    "mapping_suggest",
    "messages_dump",
    "metadata_clean",
    "parse_line",
    "parse_object",
    "parse_rows",
    "printable",
    "read_input",
    "read_json_document",
    "read_jsonl",
    "read_lines",
    "read_rows",
    "rows_csv",
    "rows_json_document",
    "rows_jsonl",
    "rows_parquet",
    "tags_clean",
    "validate_messages",
]
