"""Reads of examples: the filtered list, one example, its history with diffs, imports, and JSONL exports."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, QuerySet, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Length
from django.http import Http404

from core.rows import model_columns, model_from_row

from .. import formats
from ..models import DatasetVersion, Example, ExampleCounter, ImportJob, Project, Review, ReviewStatus, Revision
from .readiness import _over_length_ids


def example_list(
    *,
    project: Project,
    status: str = "",
    label: str = "",
    tag: str = "",
    q: str = "",
    reviewer: str = "",
    format: str = "",
    cluster: str = "",
    too_long: bool = False,
) -> QuerySet[Example]:
    """A project's examples filtered by status, label, tag, reviewer, answer format (ok / bad / unchecked),
    duplicate cluster and free text (words in any message)."""
    examples = Example.objects.filter(project=project)
    if format in ("ok", "bad"):
        examples = examples.filter(format_ok=format == "ok")
    elif format == "unchecked":
        examples = examples.filter(format_ok__isnull=True)
    if cluster.isdigit():
        examples = examples.filter(cluster_id=int(cluster))
    if too_long:
        over = _over_length_ids(project)
        if over is not None:  # the examples the last quality scan counted over the limit: the dashboard's number
            examples = examples.filter(pk__in=over)
        else:  # no scan kept the lengths (or more are over than it kept): 4 bytes a token on the stored JSON
            limit = project.max_seq_length * formats.BYTES_PER_TOKEN
            examples = examples.alias(size=Length(Cast("messages", TextField()))).filter(size__gt=limit)
    if reviewer:
        examples = examples.filter(
            Exists(Review.objects.filter(example=OuterRef("pk"), reviewer__username=reviewer))
        )  # once per example, whatever the number of review rounds
    if status:
        examples = examples.filter(status=status)
    if label:
        examples = examples.filter(label=label)
    if tag:
        if connection.vendor == "postgresql":
            examples = examples.filter(tags__contains=[tag])  # served by a GIN index
        else:
            examples = examples.filter(tags__icontains=f'"{tag}"')
    words = q.split()
    if words and connection.vendor == "postgresql":
        # Indexed rows through the GIN index; rows an import just wrote (not indexed yet) by a scan of those alone.
        patterns = [f"%{_like_escape(word)}%" for word in words]
        unindexed = " AND ".join(["curation_example.messages::text ILIKE %s"] * len(patterns))
        examples = examples.filter(
            RawSQL(
                "(curation_example.search_vector @@ plainto_tsquery('simple', %s)"
                f" OR (curation_example.search_vector IS NULL AND {unindexed}))",
                [" ".join(words), *patterns],
                output_field=BooleanField(),
            )
        )
    elif words:
        for word in words:
            examples = examples.filter(messages__icontains=word)
    return examples.order_by("id")


def example_count_upto(*, examples: QuerySet[Example], limit: int) -> int:
    """How many examples match, counted no further than limit + 1 (more than `limit`): bounded at any size, but a
    filter that few rows match reads up to `limit` index entries (hundreds of milliseconds at 1M)."""
    return examples.order_by()[: limit + 1].count()


FORMAT_STATES = {"unchecked": 0, "ok": 1, "bad": 2}  # the counters' format_state (curation/counters.py)


def example_count_counted(*, project: Project, filters: dict[str, str], too_long: bool = False) -> int | None:
    """How many examples match the list's filters, read from the counters the database maintains when the filters
    are ones they count by (status, label, format); None for any other filter (words, tags, reviewer, ...)."""
    counted = {"status", "label", "format"}
    if too_long or any(value for key, value in filters.items() if key not in counted):
        return None
    rows = ExampleCounter.objects.filter(project=project)
    if filters.get("status"):
        rows = rows.filter(status=filters["status"])
    if filters.get("label"):
        rows = rows.filter(label=filters["label"])
    if filters.get("format") in FORMAT_STATES:  # example_list ignores any other value
        rows = rows.filter(format_state=FORMAT_STATES[filters["format"]])
    return rows.aggregate(n=Sum("n"))["n"] or 0


EXCERPT_CHARS = 110  # of each user turn, in the list's text column


def example_rows(*, examples: QuerySet[Example], limit: int) -> list[dict]:
    """A page of the example list as its table shows it, as dicts: id, status (and its name), disputed, label,
    tags, updated_at and `excerpt`, the user's turns each cut to EXCERPT_CHARS. The cut is made in the database, so
    a page of long examples does not read their messages whole."""
    if connection.vendor == "postgresql":
        turns = RawSQL(
            "ARRAY(SELECT left(m->>'content', %s) FROM jsonb_array_elements(curation_example.messages) m"
            " WHERE m->>'role' = 'user')",
            [EXCERPT_CHARS + 1],
        )
    else:
        turns = RawSQL(
            "(SELECT json_group_array(substr(json_extract(m.value, '$.content'), 1, %s))"
            " FROM json_each(curation_example.messages) m WHERE json_extract(m.value, '$.role') = 'user')",
            [EXCERPT_CHARS + 1],
        )
    names = dict(ReviewStatus.choices)
    rows = list(
        examples.annotate(user_turns=turns).values(
            "id", "status", "disputed", "label", "tags", "updated_at", "user_turns"
        )[:limit]
    )
    for row in rows:
        user_turns = row.pop("user_turns")
        if isinstance(user_turns, str):  # SQLite's json_group_array
            user_turns = json.loads(user_turns)
        row["excerpt"] = "".join(_cut(turn or "", EXCERPT_CHARS) for turn in user_turns or [])
        row["status_name"] = names.get(row["status"], row["status"])
    return rows


def _cut(text: str, limit: int) -> str:
    """As the truncatechars filter cuts: at most `limit` characters, an ellipsis last when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def example_get(*, project: Project, example_id: int, for_review: bool = False) -> Example:
    """The project's example (404 otherwise). `for_review`: under its row lock, with what a review writes from (call
    it inside a transaction)."""
    if for_review:
        # Each review reads it: one statement written out, not a queryset compiled each time.
        with connection.cursor() as cursor:
            cursor.execute(_for_review_sql(connection.features.has_select_for_update_of), [example_id, project.pk])
            row = cursor.fetchone()
        example = model_from_row(Example, row[:-1]) if row else None
        if example is not None:
            example.import_author_id = row[-1]  # who imported it: the author of its first revision
    else:
        example = Example.objects.filter(project=project, pk=example_id).first()
    if example is None:
        raise Http404("No such example.")
    example.project = project
    return example


@cache
def _for_review_sql(lock: bool) -> str:
    """The example and who imported it, under its row lock where the database has row locks (SQLite locks the
    whole database for the write transaction instead)."""
    return (
        f"SELECT {model_columns(Example)}, (SELECT j.created_by_id FROM curation_importjob j"
        " WHERE j.id = curation_example.import_job_id) FROM curation_example"
        " WHERE curation_example.id = %s AND curation_example.project_id = %s"
        + (" FOR UPDATE OF curation_example" if lock else "")
    )


class ExportError(Exception):
    """An export that cannot go on: the lines already sent are not the whole export."""


def example_export_lines(*, examples: QuerySet[Example], messages_only: bool = False) -> Iterator[bytes]:
    """Stream examples as JSONL lines (OpenAI chat format), a server-side cursor at a time."""
    rows = examples.values_list("messages", "label", "tags", "metadata").iterator(chunk_size=2000)
    lines = (formats.example_to_json_line(*row, messages_only=messages_only) for row in rows)
    return _export_guarded(lines)


def _export_guarded(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The lines, or an ExportError naming how far the export got: never a shorter file that looks whole."""
    count = 0
    try:
        for line in lines:
            yield line
            count += 1
    except (TypeError, ValueError, RecursionError) as error:
        raise ExportError(f"the export stopped after {count} example(s): the next one cannot be written ({error}).")


def import_job_list(*, project: Project) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project).select_related("created_by", "project").order_by("-created_at")


@dataclass
class RevisionView:
    """A revision and what changed since the one before it."""

    revision: Revision
    changes: list[str]
    diffs: list[tuple[str, list[tuple[str, str]]]]


def example_history(*, example: Example) -> list[RevisionView]:
    """Every saved state of the example, newest first, each with its diff against the previous state."""
    revisions = list(Revision.objects.filter(example=example).select_related("author").order_by("version"))
    views = []
    previous = None
    for revision in revisions:
        changes, diffs = [], []
        if previous is not None:
            for field in ("status", "label"):
                before, after = getattr(previous, field), getattr(revision, field)
                if before != after:
                    changes.append(f"{field}: {before or '(none)'} → {after or '(none)'}")
            if previous.tags != revision.tags:
                changes.append(f"tags: {', '.join(previous.tags) or '(none)'} → {', '.join(revision.tags) or '(none)'}")
            diffs = _message_diffs(previous.messages, revision.messages)
        views.append(RevisionView(revision, changes, diffs))
        previous = revision
    return views[::-1]


def _message_diffs(before: list[dict], after: list[dict]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per changed turn: its role and the lines of a diff, each marked '+', '-' or ' '."""
    diffs = []
    for index in range(max(len(before), len(after))):
        old = before[index] if index < len(before) else {"role": "", "content": ""}
        new = after[index] if index < len(after) else {"role": "", "content": ""}
        if old == new:
            continue
        lines = [
            (line[0], line[2:])
            for line in difflib.ndiff(old["content"].splitlines(), new["content"].splitlines())
            if line[0] in "+- "
        ]
        diffs.append((new["role"] or old["role"], lines))
    return diffs


def version_export_lines(*, version: DatasetVersion, split: str, messages_only: bool = False) -> Iterator[bytes]:
    items = version.items.filter(split=split).order_by("id").values_list("messages", "label")
    lines = (
        formats.example_to_json_line(m, label, [], {}, messages_only=messages_only) for m, label in items.iterator(2000)
    )
    return _export_guarded(lines)
