"""The evaluation's metrics, each one pure function with its formula. No Django, no model: answers in, number out.

n is the number of test examples; 1[.] is 1 when its condition holds, else 0. A metric that cannot be computed for a
system (no output format, no labels, no judge scores) is None, never 0, and is left out of the verdict.

The verdict compares systems on the same test examples: every difference carries a 95% paired bootstrap interval
(the examples resampled with replacement, 2,000 times, seeded), and only an interval that excludes 0 decides.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from curation import patterns  # no Django in it either

if TYPE_CHECKING:
    import numpy as np


# Direction of each metric, for "best" and for the verdict.
HIGHER_IS_BETTER = {
    "format_accuracy": True,
    "label_accuracy": True,
    "macro_f1": True,
    "content_relevance": True,
    "chrf": True,
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


def label_reader(spec: dict | None, labels: Iterable[str]) -> Callable[[str], str | None] | None:
    """Where the output format names the label, a reader of it: a regex's named group `label`, or the top-level
    property of a JSON schema called `label` or whose `enum` is drawn from the label set. None when the format names
    no place for it (the label is then read from the text with `label_from_answer`, if the references state it)."""
    labels = frozenset(label for label in labels if label)
    kind = (spec or {}).get("kind", "none")
    if not labels or kind not in ("regex", "json_schema"):
        return None
    if kind == "regex":
        try:
            compiled = patterns.regex_compile(spec["pattern"])  # RE2: linear time in the answer, whatever the pattern
        except patterns.PatternError:
            return None
        if "label" not in compiled.groupindex:
            return None

        def from_group(answer: str) -> str | None:
            match = compiled.fullmatch(answer)
            found = match.group("label") if match else None
            return found if found in labels else None

        return from_group
    properties = (spec.get("schema") or {}).get("properties") or {}
    named = [
        key
        for key, value in properties.items()
        if key == "label" or (isinstance(value, dict) and value.get("enum") and set(value["enum"]) <= labels)
    ]
    if not named:
        return None
    key = "label" if "label" in named else named[0]

    def from_json(answer: str) -> str | None:
        try:
            found = json.loads(answer).get(key)
        except (ValueError, AttributeError):
            return None
        return found if isinstance(found, str) and found in labels else None

    return from_json


def labels_stated(references: Sequence[str], reference_labels: Sequence[str | None], labels: Iterable[str]) -> int:
    """How many reference answers state their own label (as `label_from_answer` reads it). When most of the labelled
    ones do, a generated answer's label can be read the same way; when they do not (labels kept beside free-form
    answers), label accuracy of a generated answer measures nothing and is None."""
    labels = list(labels)
    return sum(
        1
        for text, label in zip(references, reference_labels, strict=True)
        if label and label_from_answer(text, labels) == label
    )


def majority_label(counts: dict[str, int]) -> tuple[str, float] | None:
    """The most frequent label of the training split (from its label counts; ties: the first in sorted order) and
    its share. The reference row that always answers it shows what a label accuracy is worth on an imbalanced set."""
    counts = {label: count for label, count in counts.items() if label and count}
    if not counts:
        return None
    label = min(counts, key=lambda name: (-counts[name], name))
    return label, counts[label] / sum(counts.values())


@functools.cache
def _chrf_metric():
    from sacrebleu.metrics import CHRF

    return CHRF()


def chrf(answer: str, reference: str) -> float:
    """Sentence-level chrF of an answer against its reference (sacrebleu's defaults: character n-grams up to 6,
    whitespace ignored, F-beta with beta = 2, so recall weighs more), from 0 to 100. The `chrf` metric of a system is
    the mean over the test examples."""
    return float(_chrf_metric().sentence_score(answer, [reference]).score)


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


# --- How sure: paired bootstrap intervals of differences -------------------------------------------------------------
# numpy is imported inside the functions: the web process imports this module for names and directions only.

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
# Metrics whose per-example values are paired over the test examples (the mean of them is the metric).
PAIRED_MEANS = {"format_accuracy", "label_accuracy", "content_relevance", "chrf", "hallucination_rate"}
# Cost is computed from a throughput or token prices, not sampled per example: no interval; a relative difference
# under this is a tie.
MEASURED_TOLERANCE = 0.10
_CHUNK = 2_000_000  # resampled values held in memory at once


def _bootstrap(m: int, statistic: Callable[[np.ndarray], np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """The statistic on `resamples` resamples (rows of m indices drawn with replacement), a chunk at a time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK // max(m, 1))
    out = []
    for start in range(0, resamples, rows):
        out.append(statistic(rng.integers(0, m, size=(min(rows, resamples - start), m))))
    return np.concatenate(out)


def _interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    import numpy as np

    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return round(float(low), 12), round(float(high), 12)


def paired_mean_difference(
    candidate: Sequence[float | None],
    baseline: Sequence[float | None],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict | None:
    """mean(a_i - b_i) over the m examples where both systems have a value, and its percentile bootstrap interval:
    the examples resampled with replacement `resamples` times, the same resample for both systems (paired). None when
    no example has both."""
    import numpy as np

    pairs = [(a, b) for a, b in zip(candidate, baseline, strict=True) if a is not None and b is not None]
    if not pairs:
        return None
    d = np.array([float(a) - float(b) for a, b in pairs])
    low, high = _interval(_bootstrap(len(d), lambda idx: d[idx].mean(axis=1), resamples, seed), confidence)
    result = {"difference": float(d.mean()), "ci_low": low, "ci_high": high, "n": len(d)}
    if all(float(a) in (0.0, 1.0) and float(b) in (0.0, 1.0) for a, b in pairs):
        result["p_value"] = mcnemar_exact(sum(1 for x in d if x > 0), sum(1 for x in d if x < 0))
    return result


def mcnemar_exact(wins: int, losses: int) -> float:
    """Two-sided exact McNemar test on the discordant pairs (examples one system got right and the other wrong).
    On a handful of examples the percentile bootstrap can give a zero-width interval (5 right of 5 against 0 of 5);
    McNemar says p = 0.0625 there: not enough to call it."""
    if wins + losses == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def _macro_f1_rows(predicted: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """macro_f1 of each row of label codes (predicted code k = no label); labels neither predicted nor referenced in
    a row are left out of its mean, as `macro_f1` does."""
    import numpy as np

    rows = predicted.shape[0]
    codes = predicted * k + reference + (np.arange(rows)[:, None] * (k + 1) * k)
    counts = np.bincount(codes.ravel(), minlength=rows * (k + 1) * k).reshape(rows, k + 1, k)
    tp = counts[:, np.arange(k), np.arange(k)]
    both = counts[:, :k, :].sum(axis=2) + counts.sum(axis=1)  # predicted + referenced = 2 TP + FP + FN
    present = both > 0
    f1 = np.where(present, 2 * tp / np.maximum(both, 1), 0.0)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def paired_macro_f1_difference(
    candidate: Sequence[str | None],
    baseline: Sequence[str | None],
    reference: Sequence[str | None],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict | None:
    """macro_f1(a) - macro_f1(b) over the examples with a reference label, and its paired bootstrap interval."""
    import numpy as np

    keep = [i for i, label in enumerate(reference) if label]
    if not keep:
        return None
    names = sorted({reference[i] for i in keep} | {p[i] for p in (candidate, baseline) for i in keep if p[i]})
    code = {name: number for number, name in enumerate(names)}
    k = len(names)
    ref = np.array([code[reference[i]] for i in keep])
    a = np.array([code[candidate[i]] if candidate[i] else k for i in keep])
    b = np.array([code[baseline[i]] if baseline[i] else k for i in keep])

    def statistic(idx: np.ndarray) -> np.ndarray:
        return _macro_f1_rows(a[idx], ref[idx], k) - _macro_f1_rows(b[idx], ref[idx], k)

    difference = float(statistic(np.arange(len(keep))[None, :])[0])
    low, high = _interval(_bootstrap(len(keep), statistic, resamples, seed), confidence)
    return {"difference": difference, "ci_low": low, "ci_high": high, "n": len(keep)}


def unpaired_percentile_difference(
    candidate: Sequence[float],
    baseline: Sequence[float],
    p: float,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict | None:
    """percentile_p(a) - percentile_p(b) of two samples measured apart (latencies of single queries), each resampled
    on its own; its percentile bootstrap interval. None when either sample is empty."""
    import numpy as np

    if not candidate or not baseline:
        return None
    rng = np.random.default_rng(seed)
    stats = []
    for values in (np.sort(np.asarray(candidate, float)), np.sort(np.asarray(baseline, float))):
        rank = max(0, math.ceil(p / 100 * len(values)) - 1)
        resampled = np.sort(values[rng.integers(0, len(values), size=(resamples, len(values)))], axis=1)
        stats.append(resampled[:, rank])
    low, high = _interval(stats[0] - stats[1], confidence)
    difference = percentile(list(candidate), p) - percentile(list(baseline), p)
    return {"difference": float(difference), "ci_low": low, "ci_high": high, "n": min(len(candidate), len(baseline))}


def compare(metric: str, candidate: dict, baseline: dict, reference_labels: Sequence[str | None]) -> dict | None:
    """The difference candidate - baseline on a metric with its 95% interval, from the two systems' per-example
    values ({metric: [value per test example], "labels": [predicted label per example], "latencies": [ms]}).
    None when the metric has no per-example values to resample (cost, or values not kept)."""
    if metric in PAIRED_MEANS and candidate.get(metric) is not None and baseline.get(metric) is not None:
        return paired_mean_difference(candidate[metric], baseline[metric])
    if metric == "macro_f1" and candidate.get("labels") is not None and baseline.get("labels") is not None:
        return paired_macro_f1_difference(candidate["labels"], baseline["labels"], reference_labels)
    if metric.startswith("latency_p") and candidate.get("latencies") and baseline.get("latencies"):
        return unpaired_percentile_difference(candidate["latencies"], baseline["latencies"], float(metric[9:11]))
    return None


def _comparison(metric: str, ours: float, theirs: float, interval: dict | None) -> dict:
    """One comparison: significant when the interval excludes 0 (or, for a measured metric without one, when the
    values differ by MEASURED_TOLERANCE or more); `better` is None unless significant."""
    higher = HIGHER_IS_BETTER[metric]
    if interval is not None:
        difference, low, high, n = interval["difference"], interval["ci_low"], interval["ci_high"], interval["n"]
        # Accuracies (0/1 per example) must also pass the exact McNemar test, which holds on small test splits.
        significant = (low > 0 or high < 0) and interval.get("p_value", 0.0) < 1 - CONFIDENCE
    else:
        difference, low, high, n = ours - theirs, None, None, None
        scale = max(abs(ours), abs(theirs))
        measured = metric not in PAIRED_MEANS and metric != "macro_f1"
        significant = measured and bool(scale) and abs(difference) / scale >= MEASURED_TOLERANCE
    better = ((difference > 0) == higher) if significant else None
    return {
        "metric": metric,
        "candidate": ours,
        "baseline_value": theirs,
        "difference": round(difference, 6),
        "ci_low": None if low is None else round(low, 6),
        "ci_high": None if high is None else round(high, 6),
        "n": n,
        "significant": significant,
        "better": better,
        "p_value": None if interval is None or "p_value" not in interval else round(interval["p_value"], 6),
    }


def examples_needed(comparison: dict) -> int | None:
    """Test examples at which an undecided interval would exclude 0 if the difference held: its half-width shrinks
    as 1/sqrt(n), so n x (half-width / |difference|)^2. None without an interval or with no difference at all."""
    low, high, n, difference = (comparison.get(k) for k in ("ci_low", "ci_high", "n", "difference"))
    if low is None or not n or not difference:
        return None
    half = (high - low) / 2
    return max(n + 1, math.ceil(n * (half / abs(difference)) ** 2)) if half > 0 else None


def best_marks(
    results: dict[str, dict[str, float | None]], examples: dict[str, dict], reference_labels: Sequence[str | None]
) -> dict[str, str | None]:
    """For each metric, the system to mark as best: only when its value is significantly better than the runner-up's
    (the interval of their difference excludes 0); None when it is not, or when fewer than two systems have it."""
    marks: dict[str, str | None] = {}
    for metric, higher in HIGHER_IS_BETTER.items():
        present = [(system, values[metric]) for system, values in results.items() if values.get(metric) is not None]
        present.sort(key=lambda pair: -pair[1] if higher else pair[1])  # stable: ties keep the listed order
        if len(present) < 2 or present[0][1] == present[1][1]:
            marks[metric] = None
            continue
        (top, ours), (runner_up, theirs) = present[0], present[1]
        interval = compare(metric, examples.get(top, {}), examples.get(runner_up, {}), reference_labels)
        marks[metric] = top if _comparison(metric, ours, theirs, interval)["better"] else None
    return marks


OUTCOMES = ("beats_all", "loses", "inconclusive", "no_signal")


def verdict(
    results: dict[str, dict[str, float | None]],
    primary: Sequence[str],
    examples: dict[str, dict] | None = None,
    reference_labels: Sequence[str | None] = (),
    candidate: str = "fine_tuned",
) -> dict:
    """Does the candidate beat every other system on every primary metric? Each comparison is the difference
    candidate - baseline with its 95% paired bootstrap interval (from `examples`, the per-example values; see
    `compare`). The outcome:

    - `no_signal`: nothing comparable (every comparison has a None side: the metric does not apply; skipped);
    - `loses`: some interval lies wholly on the wrong side of 0;
    - `beats_all`: every interval lies wholly on the right side of 0;
    - `inconclusive`: otherwise; some interval includes 0, a tie among them. A tie is never a loss.
    """
    examples = examples or {}
    mine = results.get(candidate, {})
    comparisons, skipped = [], []
    for metric in primary:
        for system, metrics in results.items():
            if system == candidate:
                continue
            theirs, ours = metrics.get(metric), mine.get(metric)
            if theirs is None or ours is None:
                skipped.append({"system": system, "metric": metric})
                continue
            interval = compare(metric, examples.get(candidate, {}), examples.get(system, {}), reference_labels)
            comparisons.append({"baseline": system, **_comparison(metric, ours, theirs, interval)})
    for comparison in comparisons:
        comparison["n_needed"] = None if comparison["significant"] else examples_needed(comparison)

    def listed(items):  # the shape of wins and losses before intervals, with the interval added
        keys = ("difference", "ci_low", "ci_high")
        return [
            {"system": c["baseline"], "metric": c["metric"], "fine_tuned": c["candidate"],
             "baseline": c["baseline_value"], **{key: c[key] for key in keys}}
            for c in items
        ]  # fmt: skip

    losses = [c for c in comparisons if c["better"] is False]
    wins = [c for c in comparisons if c["better"] is True]
    undecided = [c for c in comparisons if c["better"] is None]
    if not comparisons:
        outcome = "no_signal"
    elif losses:
        outcome = "loses"
    elif undecided:
        outcome = "inconclusive"
    else:
        outcome = "beats_all"
    needed = [c["n_needed"] for c in undecided if c["n_needed"]]
    return {
        "outcome": outcome,
        "beats_all": outcome == "beats_all",
        "comparisons": comparisons,
        "losses": listed(losses),
        "wins": listed(wins),
        "undecided": listed(undecided),
        "skipped": skipped,
        "n_needed": max(needed) if needed else None,
    }


# --- Trusting the judge: its agreement with the experts who rated its answers blind ----------------------------------

AGREEMENT_MIN = 0.6  # under this, rho or kappa is low: the judge's scores are not to be relied on
RATINGS_MIN = 20  # rated answers below which the agreement itself is too uncertain to rely on


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation: Pearson's r of the two lists' ranks, tied values sharing their average rank
    (scipy's `spearmanr`). None when it is undefined: fewer than 2 pairs, or a list whose values are all the same
    (no order to correlate with)."""
    if len(a) != len(b):
        raise ValueError("a and b differ in length")
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' yes/no: (p_o - p_e) / (1 - p_e), p_o the share of pairs that agree and p_e the
    share expected by chance from each rater's own rate of yes (scikit-learn's `cohen_kappa_score`). None when it is
    undefined: no pair, or both raters saying the same one class throughout (p_e = 1: nothing to correct for chance,
    so nothing says whether the judge can tell the classes apart). One rater constant and the other not gives 0."""
    if len(a) != len(b):
        raise ValueError("a and b differ in length")
    if not a or (len(set(a)) == 1 and set(a) == set(b)):
        return None
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score([bool(x) for x in a], [bool(y) for y in b]))


def judge_agreement(rows: Iterable[dict]) -> dict:
    """How far the judge agrees with the experts, over the answers that both the judge and at least one expert scored.

    Each row is one answer: `judge_relevance` (float or None), `judge_unsupported` (bool or None), and the experts'
    ratings of it, `relevance` (list of 1-5) and `unsupported` (list of bool). An answer the judge did not score
    (None: the judge failed on it, or the system has no text answer) or that no expert rated is left out, never
    counted as 0. Several experts on one answer count once, as their consensus: the mean of their relevance, and the
    majority of their unsupported flags, a tie counting as unsupported (half the experts finding a claim the source
    does not support is enough to call the answer unsupported, as the judge does on one claim).

    Returns {"n": answers compared, "ratings": expert ratings behind them, "relevance_spearman": rho of the judge's
    relevance against the experts' mean, "unsupported_kappa": kappa of the judge's flag against the experts' majority};
    a statistic that is undefined (see spearman_rho, cohen_kappa) is None."""
    judge_relevance, expert_relevance, judge_flag, expert_flag = [], [], [], []
    ratings = 0
    for row in rows:
        if row["judge_relevance"] is None or row["judge_unsupported"] is None or not row["relevance"]:
            continue
        ratings += len(row["relevance"])
        judge_relevance.append(float(row["judge_relevance"]))
        expert_relevance.append(sum(row["relevance"]) / len(row["relevance"]))
        judge_flag.append(bool(row["judge_unsupported"]))
        expert_flag.append(2 * sum(1 for flag in row["unsupported"] if flag) >= len(row["unsupported"]))
    rho = spearman_rho(judge_relevance, expert_relevance)
    kappa = cohen_kappa(judge_flag, expert_flag)
    return {
        "n": len(judge_relevance),
        "ratings": ratings,
        "relevance_spearman": None if rho is None else round(rho, 4),
        "unsupported_kappa": None if kappa is None else round(kappa, 4),
    }
