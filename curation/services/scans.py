"""Quality scans: near duplicates, format conformance and token lengths (counted, or else estimated)."""

from __future__ import annotations

import bisect
import heapq
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from core import server_paths
from core.errors import ServiceError

from .. import formats, quality, selectors
from ..models import DatasetVersion, DatasetVersionItem, Example, Project, QualityScan

logger = logging.getLogger(__name__)


TOKEN_BUCKETS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


def quality_scan_start(*, project: Project, threshold: float | None = None) -> QualityScan:
    """Queue a scan of the project (one at a time: a scan already queued serves the new request too).

    threshold: the Jaccard similarity from which two examples count as near duplicates (default: quality.THRESHOLDS)."""
    if threshold is None:
        threshold = quality.THRESHOLDS.near_duplicate_threshold
    if not 0.5 <= threshold <= 1:
        raise ServiceError("the near-duplicate threshold must be a number between 0.5 and 1.", field="threshold")
    queued = QualityScan.objects.filter(project=project, status=QualityScan.Status.QUEUED).first()
    if queued is not None:
        if queued.threshold != threshold:
            queued.threshold = threshold
            queued.save(update_fields=["threshold"])
        return queued
    scan = QualityScan.objects.create(project=project, threshold=threshold)
    from ..tasks import quality_scan_run as task

    transaction.on_commit(lambda: task.delay(scan.pk), robust=True)
    return scan


def quality_scan_run(*, scan: QualityScan) -> QualityScan:
    """Cluster exact and near duplicates, check every last answer against the output format, and histogram the
    token lengths per role (counted with the project's tokenizer, else estimated); keep the longest examples with
    their lengths as a run sees them (chat template included); store clusters and format results on the examples."""
    project = scan.project
    scan.status, scan.started_at = QualityScan.Status.RUNNING, timezone.now()
    scan.save(update_fields=["status", "started_at"])
    try:
        fits = formats.answer_checker(project.output_format)
        histogram = {role: [0] * len(TOKEN_BUCKETS) for role in ("system", "user", "assistant")}
        too_long = 0
        format_changes: dict[int, bool | None] = {}
        count = 0

        counter = _token_counter(project)
        longest: list[tuple[int, int]] = []  # a min-heap of (tokens, id): the LONGEST_KEPT longest examples
        characters = tokens_counted = 0
        example_histogram = [0] * len(TOKEN_BUCKETS)

        def examples():
            nonlocal too_long, count
            rows = Example.objects.filter(project=project).order_by("id")
            chunk: list[tuple[int, list[dict], bool | None]] = []
            for row in rows.values_list("id", "messages", "format_ok").iterator(5000):
                chunk.append(row)
                if len(chunk) == 1000:
                    yield from checked(chunk)
                    chunk = []
            yield from checked(chunk)

        def checked(chunk):
            nonlocal too_long, count, characters, tokens_counted
            lengths = iter(counter.count([message["content"] for _, messages, _ in chunk for message in messages]))
            for example_id, messages, format_ok in chunk:
                count += 1
                total = counter.per_example + sum(counter.per_role.get(m["role"], 0) for m in messages)  # template
                for message in messages:
                    tokens = next(lengths)
                    total += tokens
                    characters, tokens_counted = characters + len(message["content"]), tokens_counted + tokens
                    role = message["role"] if message["role"] in histogram else "user"
                    histogram[role][bisect.bisect_right(TOKEN_BUCKETS, tokens) - 1] += 1
                too_long += total > project.max_seq_length
                example_histogram[bisect.bisect_right(TOKEN_BUCKETS, total) - 1] += 1
                if len(longest) < LONGEST_KEPT:
                    heapq.heappush(longest, (total, example_id))
                elif total > longest[0][0]:
                    heapq.heapreplace(longest, (total, example_id))
                ok = fits(formats.last_answer(messages)) if fits else None
                if ok != format_ok:
                    format_changes[example_id] = ok
                yield example_id, messages

        clusters = quality.duplicate_clusters(examples(), threshold=scan.threshold)
        with transaction.atomic():
            Example.objects.filter(project=project, cluster_id__isnull=False).update(cluster_id=None)
            _update_column(project, "cluster_id", clusters)
            _update_column(project, "format_ok", format_changes)
        scan.examples = count
        # Counted as everywhere else (selectors.duplicate_clusters): rejected members do not make a cluster.
        totals = selectors.duplicate_cluster_totals(project=project)
        scan.clusters, scan.clustered_examples = totals["clusters"], totals["examples"]
        latest = DatasetVersion.objects.filter(project=project).order_by("-number").first()
        scan.stats = {
            # The latest version's clusters across splits, as these clusters see it (readiness: no_leakage).
            "leaks": {str(latest.pk): _version_leaks(latest)} if latest else {},
            "estimate": counter.label,
            "exact": counter.exact,
            "error": counter.error,  # the estimate's expected relative error (low, high); None when counted
            "buckets": TOKEN_BUCKETS,
            "histogram": histogram,  # per message, its content's tokens
            # Per example: the contents and the chat template's tokens, as a run's sequence (selectors.
            # over_length_examples names the examples over any max length from these).
            "template_tokens": {"per_example": counter.per_example, **counter.per_role},
            "example_histogram": example_histogram,
            "longest": [[example_id, tokens] for tokens, example_id in sorted(longest, reverse=True)],
            "longest_kept": LONGEST_KEPT,
            "too_long": too_long,
            "max_seq_length": project.max_seq_length,
            # The project's own ratio, for estimates from characters (a run's tokens an epoch in its pre-flight).
            "chars_per_token": round(characters / tokens_counted, 3) if tokens_counted else None,
        }
        scan.status = QualityScan.Status.SUCCEEDED
    except Exception as error:
        scan.status, scan.error = QualityScan.Status.FAILED, server_paths.redact(f"{type(error).__name__}: {error}")
        raise
    finally:
        scan.finished_at = timezone.now()
        scan.save()
    return scan


# The estimate, when no tokenizer counts: a byte-level BPE gives a short word one token and splits a long one into
# pieces of about two bytes past its first seven, gives each symbol its own token and groups digits by three.
# Measured against byte-level BPE tokenizers trained on the texts themselves (tiny-local's 2,048 tokens) on support
# tickets, English prose and Python code: 1.01-1.23x their totals, and 90% of single texts within -25%/+30%. UTF-8
# bytes / 4, the former estimate, was 0.71-1.12x (0.71x on prose). A large vocabulary (Llama 3, Qwen) counts
# fewer tokens than either on English prose.
ESTIMATE_ERROR = (-0.25, 0.30)
ESTIMATE_SCALE = 1.1
# Tokens a chat template adds per example (a beginning-of-text token) and around each message by its role (role
# markers, end of turn).
ESTIMATE_TEMPLATE = (1, {"system": 4, "user": 4, "assistant": 4})
ESTIMATE_LABEL = (
    "tokens estimated from words, numbers and symbols (expected within -25%/+30% of a BPE tokenizer's count; a "
    "large vocabulary such as Llama 3's counts fewer): set the project's tokenizer to count them exactly"
)
LONGEST_KEPT = 1000  # the longest examples a scan names (with their token counts), longest first
_WORDS = re.compile(r"[^\W\d_]+")
_LONG_WORDS = re.compile(r"[^\W\d_]{8,}")
_NUMBERS = re.compile(r"\d+")
_SYMBOLS = re.compile(r"[^\w\s]|_")
_LINE_BREAKS = re.compile(r"\s*\n\s*")


def token_estimate(text: str) -> int:
    """Tokens a BPE tokenizer would give `text`, estimated (see ESTIMATE_ERROR) without one."""
    ascii_only = text.isascii()
    tokens = len(_WORDS.findall(text))
    for word in _LONG_WORDS.findall(text):
        size = len(word) if ascii_only else len(word.encode())
        tokens += -(-(size - 7) // 2) if size > 7 else 0
    tokens += sum(-(-len(number) // 3) for number in _NUMBERS.findall(text))
    tokens += len(_SYMBOLS.findall(text)) + len(_LINE_BREAKS.findall(text))
    return math.ceil(tokens * ESTIMATE_SCALE)


@dataclass
class _TokenCounter:
    count: Any  # texts -> their token counts
    label: str
    exact: bool
    error: tuple[float, float] | None
    per_example: int  # tokens the chat template adds once per example (a beginning-of-text token...)
    per_role: dict[str, int]  # and around each message, by its role


def _token_counter(project: Project) -> _TokenCounter:
    """Token lengths of many texts at once, with the project's tokenizer when it loads (offline), else estimated."""

    def estimate(texts: list[str]) -> list[int]:
        return [token_estimate(text) for text in texts]

    if not project.tokenizer:
        return _TokenCounter(estimate, ESTIMATE_LABEL, False, ESTIMATE_ERROR, *ESTIMATE_TEMPLATE)
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(project.tokenizer)
    except Exception as error:  # not downloaded, not a tokenizer: the estimate, and say why
        logger.warning("tokenizer %r did not load: %s", project.tokenizer, error)
        label = f"{ESTIMATE_LABEL} (the tokenizer {server_paths.redact(project.tokenizer)} did not load)"
        return _TokenCounter(estimate, label, False, ESTIMATE_ERROR, *ESTIMATE_TEMPLATE)

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    label = f"tokens counted with the tokenizer of {server_paths.redact(project.tokenizer)}"
    return _TokenCounter(count, label, True, None, *_template_tokens(tokenizer))


def _template_tokens(tokenizer) -> tuple[int, dict[str, int]]:
    """The tokens the tokenizer's chat template adds per conversation and around a message of each role, measured
    on four probes; the estimate's when it has no template (or one that refuses the probes)."""
    content = len(tokenizer("hello", add_special_tokens=False)["input_ids"])
    system, user, assistant = ({"role": role, "content": "hello"} for role in ("system", "user", "assistant"))
    probes = ([user], [user, assistant], [user, assistant, user, assistant], [system, user, assistant])
    try:
        alone, turn, two, with_system = (
            len(tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True)["input_ids"])
            - content * len(probe)
            for probe in probes
        )
    except Exception:  # no chat template
        return ESTIMATE_TEMPLATE
    per_example = max(0, 2 * turn - two)
    user_tokens = max(0, alone - per_example)
    per_role = {"system": with_system - turn, "user": user_tokens, "assistant": two - turn - user_tokens}
    return per_example, {role: max(0, tokens) for role, tokens in per_role.items()}


def _version_leaks(version: DatasetVersion) -> int:
    """Near-duplicate clusters whose members sit in more than one split of the version."""
    clustered = Example.objects.filter(project_id=version.project_id, cluster_id__isnull=False)
    return (
        DatasetVersionItem.objects.filter(version=version, example__in=clustered)
        .values("example__cluster_id")
        .annotate(splits=Count("split", distinct=True))
        .filter(splits__gt=1)
        .count()
    )


def _update_column(project: Project, column: str, values: dict[int, Any]) -> None:
    """Set one column of many examples, ten thousand per statement."""
    items = list(values.items())
    for start in range(0, len(items), 10_000):
        chunk = items[start : start + 10_000]
        if connection.vendor == "postgresql":
            kind = "bigint" if column == "cluster_id" else "boolean"
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Example._meta.db_table} AS e SET {column} = v.value FROM unnest(%s::bigint[],"
                    f" %s::{kind}[]) AS v(id, value) WHERE e.id = v.id AND e.project_id = %s",
                    [[key for key, _ in chunk], [value for _, value in chunk], project.pk],
                )
        else:
            for key, value in chunk:
                Example.objects.filter(pk=key, project=project).update(**{column: value})
