"""The evaluation's metrics, each one pure function with its formula. No Django, no model: answers in, number out.

n is the number of test examples; 1[.] is 1 when its condition holds, else 0. A metric that cannot be computed for a
system (no output format, no labels, no judge scores) is None, never 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

# Direction of each metric, for "best" and for the verdict.
HIGHER_IS_BETTER = {
    "format_accuracy": True,
    "label_accuracy": True,
    "macro_f1": True,
    "content_relevance": True,
    "hallucination_rate": False,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "cost_per_query_usd": False,
}


def format_accuracy(answers: Sequence[str], fits: Callable[[str], bool] | None) -> float | None:
    """(1/n) x sum 1[answer satisfies the output format spec]; None without a spec."""
    if fits is None or not answers:
        return None
    return sum(1 for answer in answers if fits(answer)) / len(answers)


def label_from_answer(answer: str, labels: Iterable[str]) -> str | None:
    """The label an answer states: the first label of the set that appears in it as a whole word (case-sensitive,
    earliest position first; on a tie, the longest label). None when no label appears."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        if not label:
            continue
        match = re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", answer)
        if match and (best is None or (match.start(), -len(label)) < (best[0], best[1])):
            best = (match.start(), -len(label), label)
    return best[2] if best else None


def label_accuracy(predicted: Sequence[str | None], reference: Sequence[str | None]) -> float | None:
    """(1/m) x sum 1[predicted label = reference label], over the m examples that have a reference label (an answer
    stating no label counts as wrong); None when no example has one."""
    pairs = [(p, r) for p, r in zip(predicted, reference, strict=True) if r]
    if not pairs:
        return None
    return sum(1 for p, r in pairs if p == r) / len(pairs)


def macro_f1(predicted: Sequence[str | None], reference: Sequence[str | None]) -> float | None:
    """Mean over the labels L (those in the references or the predictions) of F1_l = 2 TP_l / (2 TP_l + FP_l + FN_l),
    over the examples with a reference label; None when no example has one."""
    pairs = [(p, r) for p, r in zip(predicted, reference, strict=True) if r]
    if not pairs:
        return None
    labels = sorted({r for _, r in pairs} | {p for p, _ in pairs if p})
    scores = []
    for label in labels:
        tp = sum(1 for p, r in pairs if p == label and r == label)
        fp = sum(1 for p, r in pairs if p == label and r != label)
        fn = sum(1 for p, r in pairs if p != label and r == label)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that exist; None when none does (e.g. the judge failed on every answer)."""
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def content_relevance(scores: Sequence[float | None]) -> float | None:
    """With a judge: the mean of its 1-5 rubric scores. Without: the mean cosine similarity of the answer's and the
    reference's sentence embeddings (in [-1, 1]; labelled as the fallback wherever shown)."""
    return mean(scores)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """a . b / (|a| |b|); 0 when either vector is zero."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def hallucination_rate(flags: Sequence[bool | None]) -> float | None:
    """(1/m) x sum 1[the answer makes a claim that neither the source nor the reference supports], over the m answers
    that were judged (by the LLM judge, or by `unsupported_terms` as the fallback)."""
    judged = [flag for flag in flags if flag is not None]
    return sum(1 for flag in judged if flag) / len(judged) if judged else None


_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_IDENTIFIER = re.compile(r"\b[\w.-]*(?:\d[\w.-]*[A-Za-z]|[A-Za-z][\w.-]*\d|_)[\w.-]*\b")
_WORD = re.compile(r"[A-Za-z][\w'-]*")


def unsupported_terms(answer: str, supported: str) -> list[str]:
    """The lexical fallback for hallucination: the numbers, identifiers (words mixing letters with digits or
    underscores) and names (capitalised words not opening a sentence or a line) of the answer that appear nowhere in
    the supported text (source + reference), compared case-insensitively."""
    known = supported.lower()
    terms = set(_NUMBER.findall(answer)) | set(_IDENTIFIER.findall(answer))
    for line in answer.splitlines():
        for sentence in re.split(r"(?<=[.!?:;])\s+", line.strip()):
            words = _WORD.findall(sentence)
            terms |= {word for word in words[1:] if word[0].isupper()}
    return sorted(term for term in terms if term.lower().strip(".-") not in known)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the value at rank ceil(p/100 x n) of the sorted values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def cost_per_query_api(
    prompt_tokens: Sequence[int], completion_tokens: Sequence[int], usd_per_m_in: float, usd_per_m_out: float
) -> float | None:
    """An API model: mean over queries of (prompt tokens x input price + completion tokens x output price) / 10^6."""
    if not prompt_tokens:
        return None
    total = sum(p * usd_per_m_in + c * usd_per_m_out for p, c in zip(prompt_tokens, completion_tokens, strict=True))
    return total / 1e6 / len(prompt_tokens)


def cost_per_query_self_hosted(gpu_usd_per_hour: float, queries_per_second: float) -> float | None:
    """A self-hosted model: the GPU's hourly price / 3600 / the measured queries per second (batched)."""
    if not queries_per_second:
        return None
    return gpu_usd_per_hour / 3600 / queries_per_second


def best(values: dict[str, float | None], metric: str) -> str | None:
    """The system with the best value of a metric (ties: the first listed)."""
    present = {system: value for system, value in values.items() if value is not None}
    if not present:
        return None
    pick = max if HIGHER_IS_BETTER[metric] else min
    return pick(present, key=present.get)


def verdict(results: dict[str, dict[str, float | None]], primary: Sequence[str], candidate: str = "fine_tuned") -> dict:
    """Does the candidate beat every other system on every primary metric (strictly better, in the metric's
    direction)? Comparisons where either side has no value are skipped and listed as such."""
    mine = results.get(candidate, {})
    losses, wins, skipped = [], [], []
    for metric in primary:
        higher = HIGHER_IS_BETTER[metric]
        for system, metrics in results.items():
            if system == candidate:
                continue
            theirs, ours = metrics.get(metric), mine.get(metric)
            if theirs is None or ours is None:
                skipped.append({"system": system, "metric": metric})
                continue
            better = ours > theirs if higher else ours < theirs
            (wins if better else losses).append(
                {"system": system, "metric": metric, "fine_tuned": ours, "baseline": theirs}
            )
    return {"beats_all": bool(wins) and not losses, "losses": losses, "wins": wins, "skipped": skipped}
