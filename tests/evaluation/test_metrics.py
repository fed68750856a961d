"""Every metric against values computed by hand."""

import pytest
from sklearn.metrics import f1_score

from curation import demo, formats
from evaluation import metrics

FITS = formats.answer_checker(demo.OUTPUT_FORMAT)
GOOD = "SEVERITY: P2\nIMPACT: one team\nACTION: look"


def test_format_accuracy_counts_answers_that_fit():
    assert metrics.format_accuracy([GOOD, "P2", GOOD, "SEVERITY: P9"], FITS) == 2 / 4
    assert metrics.format_accuracy([GOOD], None) is None and metrics.format_accuracy([], FITS) is None


def test_the_label_is_the_earliest_whole_word_label():
    labels = ["P1", "P2", "P3", "P4"]
    assert metrics.label_from_answer(GOOD, labels) == "P2"
    assert metrics.label_from_answer("SEVERITY: P3 (not P1)", labels) == "P3"
    assert metrics.label_from_answer("SEVERITY: P12", labels) is None  # P1 inside P12 is not the label
    assert metrics.label_from_answer("see MP1-P4 guide", labels) is None
    assert metrics.label_from_answer("bug or bugfix", ["bug", "bugfix"]) == "bug"


def test_label_accuracy_and_macro_f1_by_hand():
    reference = ["P1", "P1", "P2", "P2", "P3", None]
    predicted = ["P1", "P2", "P2", None, "P3", "P1"]
    # 5 examples with a reference; right: 1, 3, 5 -> 3/5.
    assert metrics.label_accuracy(predicted, reference) == 3 / 5
    # P1: TP1 FP0 FN1 -> 2/3; P2: TP1 FP1 FN1 -> 1/2; P3: TP1 -> 1. Mean: (2/3 + 1/2 + 1) / 3 = 13/18.
    assert metrics.macro_f1(predicted, reference) == pytest.approx(13 / 18)
    labelled = [(p or "none", r) for p, r in zip(predicted, reference, strict=True) if r]
    sk = f1_score([r for _, r in labelled], [p for p, _ in labelled], labels=["P1", "P2", "P3"], average="macro")
    assert metrics.macro_f1(predicted, reference) == pytest.approx(sk)
    assert metrics.label_accuracy(["P1"], [None]) is None and metrics.macro_f1(["P1"], [""]) is None


def test_relevance_and_hallucination_average_what_was_judged():
    assert metrics.content_relevance([5, 3, None, 4]) == 4.0
    assert metrics.content_relevance([None]) is None
    assert metrics.hallucination_rate([True, False, None, False]) == pytest.approx(1 / 3)
    assert metrics.cosine([1, 0], [1, 1]) == pytest.approx(2**-0.5) and metrics.cosine([0, 0], [1, 1]) == 0.0


def test_the_lexical_fallback_flags_numbers_ids_and_names_absent_from_the_source():
    source = "Customer ACME-123 reports the export fails since 2024-05-01 for 40 users. Contact Dana."
    answer = "SEVERITY: P3\nIMPACT: 40 users of ACME-123\nACTION: Ask Dana, then escalate to Priya about ticket 88."
    reference = "SEVERITY: P3\nIMPACT: export for 40 users\nACTION: investigate"
    assert metrics.unsupported_terms(answer, source + "\n" + reference) == ["88", "Priya"]
    assert metrics.unsupported_terms(reference, source + reference) == []


def test_percentiles_are_nearest_rank():
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert metrics.percentile(values, 50) == 50 and metrics.percentile(values, 95) == 100
    assert metrics.percentile([7], 95) == 7 and metrics.percentile([], 50) is None


def test_costs_per_query():
    # (1000 x $0.15 + 200 x $0.60) / 1e6 = $0.00027 and (3000 x 0.15 + 0 x 0.60) / 1e6 = $0.00045; mean $0.00036.
    assert metrics.cost_per_query_api([1000, 3000], [200, 0], 0.15, 0.60) == pytest.approx(0.00036)
    # $2.50 an hour at 10 queries/s: 2.5 / 3600 / 10.
    assert metrics.cost_per_query_self_hosted(2.5, 10) == pytest.approx(2.5 / 36000)
    assert metrics.cost_per_query_self_hosted(2.5, 0) is None


def test_the_verdict_names_the_baseline_and_metric_where_the_fine_tune_loses():
    results = {
        "fine_tuned": {"format_accuracy": 1.0, "label_accuracy": 0.8},
        "base_zero_shot": {"format_accuracy": 0.1, "label_accuracy": 0.3},
        "frontier": {"format_accuracy": 0.95, "label_accuracy": 0.85},
        "embedding_classifier": {"format_accuracy": None, "label_accuracy": 0.7},
    }
    outcome = metrics.verdict(results, ["format_accuracy", "label_accuracy"])
    assert outcome["beats_all"] is False
    assert outcome["losses"] == [
        {"system": "frontier", "metric": "label_accuracy", "fine_tuned": 0.8, "baseline": 0.85}
    ]
    assert {"system": "embedding_classifier", "metric": "format_accuracy"} in outcome["skipped"]
    results["frontier"]["label_accuracy"] = 0.8  # a tie is not a win
    assert metrics.verdict(results, ["label_accuracy"])["beats_all"] is False
    results["frontier"]["label_accuracy"] = 0.5
    assert metrics.verdict(results, ["format_accuracy", "label_accuracy"])["beats_all"] is True
    assert metrics.best({"a": 0.2, "b": None, "c": 0.1}, "latency_p95_ms") == "c"
