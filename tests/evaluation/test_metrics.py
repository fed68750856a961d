"""Every metric against values computed by hand."""

import pytest
from sklearn.metrics import f1_score

from curation import demo, formats
from evaluation import metrics, verdicts

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
    n = 40
    right, wrong = [1.0] * n, [0.0] * n
    results = {
        "fine_tuned": {"format_accuracy": 1.0, "label_accuracy": 0.0},
        "base_zero_shot": {"format_accuracy": 0.0, "label_accuracy": 0.0},
        "frontier": {"format_accuracy": 1.0, "label_accuracy": 1.0},
        "embedding_classifier": {"format_accuracy": None, "label_accuracy": 0.0},
    }
    examples = {
        "fine_tuned": {"format_accuracy": right, "label_accuracy": wrong},
        "base_zero_shot": {"format_accuracy": wrong, "label_accuracy": wrong},
        "frontier": {"format_accuracy": right, "label_accuracy": right},
        "embedding_classifier": {"format_accuracy": [None] * n, "label_accuracy": wrong},
    }
    outcome = metrics.verdict(results, ["format_accuracy", "label_accuracy"], examples)
    assert outcome["outcome"] == "loses" and outcome["beats_all"] is False
    assert outcome["losses"] == [
        {"system": "frontier", "metric": "label_accuracy", "fine_tuned": 0.0, "baseline": 1.0,
         "difference": -1.0, "ci_low": -1.0, "ci_high": -1.0}
    ]  # fmt: skip
    assert {"system": "embedding_classifier", "metric": "format_accuracy"} in outcome["skipped"]
    wins = {(w["system"], w["metric"]) for w in outcome["wins"]}
    assert wins == {("base_zero_shot", "format_accuracy")}
    assert metrics.best({"a": 0.2, "b": None, "c": 0.1}, "latency_p95_ms") == "c"


def one_example_apart():
    """The issue's set: 117 test examples, 72% of them P4; the fine-tune right on 88 (0.752), the embeddings
    classifier on 87 (0.744), the two disagreeing on 9; always answering P4 right on 84 (0.718)."""
    reference = ["P4"] * 84 + ["P2"] * 33
    tuned = [1.0] * 76 + [0.0] * 8 + [1.0] * 12 + [0.0] * 21
    classifier = [1.0] * 80 + [0.0] * 4 + [1.0] * 7 + [0.0] * 26
    majority = [1.0] * 84 + [0.0] * 33
    results = {
        "fine_tuned": {"label_accuracy": sum(tuned) / 117},
        "embedding_classifier": {"label_accuracy": sum(classifier) / 117},
        "majority_label": {"label_accuracy": sum(majority) / 117},
    }
    examples = {
        "fine_tuned": {"label_accuracy": tuned},
        "embedding_classifier": {"label_accuracy": classifier},
        "majority_label": {"label_accuracy": majority},
    }
    return results, examples, reference


def test_one_example_of_difference_on_117_examples_is_inconclusive_not_a_win():
    results, examples, _ = one_example_apart()
    assert round(results["fine_tuned"]["label_accuracy"], 3) == 0.752
    assert round(results["embedding_classifier"]["label_accuracy"], 3) == 0.744
    outcome = metrics.verdict(results, ["label_accuracy"], examples)
    assert outcome["outcome"] == "inconclusive" and outcome["beats_all"] is False and outcome["losses"] == []
    against = {c["baseline"]: c for c in outcome["comparisons"]}
    classifier = against["embedding_classifier"]
    assert classifier["difference"] == pytest.approx(1 / 117, abs=1e-6)
    assert classifier["ci_low"] < 0 < classifier["ci_high"] and classifier["n"] == 117
    assert classifier["significant"] is False and classifier["better"] is None
    # 4 examples above always answering P4: not significant either.
    assert against["majority_label"]["ci_low"] < 0 < against["majority_label"]["ci_high"]
    # What would make it conclusive: thousands of test examples, if the 1-in-117 difference held.
    assert 2_000 < outcome["n_needed"] < 50_000
    assert metrics.verdict(results, ["label_accuracy"], examples) == outcome  # seeded: the same every time


def test_the_interval_is_a_paired_bootstrap_of_the_difference():
    # Both right on 100 examples except 10 where only the candidate is: the difference never goes below 0.
    a, b = [1.0] * 100, [1.0] * 90 + [0.0] * 10
    interval = metrics.paired_mean_difference(a, b)
    assert interval["difference"] == pytest.approx(0.1) and interval["n"] == 100
    assert 0 < interval["ci_low"] < 0.1 < interval["ci_high"] < 0.2
    # Examples where either side has no value are left out of the pairs.
    assert metrics.paired_mean_difference([1.0, None, 0.0], [0.0, 1.0, None])["n"] == 1
    assert metrics.paired_mean_difference([None], [1.0]) is None
    # macro-F1: the bootstrap's point is the metric's own difference.
    reference = ["A", "A", "B", "B", "C", None, "C", "B"] * 5
    tuned = ["A", "B", "B", "B", "C", "A", None, "B"] * 5
    other = ["A", "A", "A", "A", "A", "A", "A", "A"] * 5
    f1 = metrics.paired_macro_f1_difference(tuned, other, reference)
    assert f1["difference"] == pytest.approx(metrics.macro_f1(tuned, reference) - metrics.macro_f1(other, reference))
    assert f1["ci_low"] <= f1["difference"] <= f1["ci_high"] and f1["n"] == 35


def test_five_of_five_against_none_is_not_yet_significant():
    """The percentile bootstrap's interval is [1, 1] there; the exact McNemar test (p = 0.0625) holds it back."""
    results = {"fine_tuned": {"format_accuracy": 1.0}, "base_zero_shot": {"format_accuracy": 0.0}}
    small = {"fine_tuned": {"format_accuracy": [1.0] * 5}, "base_zero_shot": {"format_accuracy": [0.0] * 5}}
    outcome = metrics.verdict(results, ["format_accuracy"], small)
    (comparison,) = outcome["comparisons"]
    assert (comparison["ci_low"], comparison["ci_high"]) == (1.0, 1.0)
    assert comparison["p_value"] == pytest.approx(0.0625) and comparison["significant"] is False
    assert outcome["outcome"] == "inconclusive"
    large = {"fine_tuned": {"format_accuracy": [1.0] * 20}, "base_zero_shot": {"format_accuracy": [0.0] * 20}}
    assert metrics.verdict(results, ["format_accuracy"], large)["outcome"] == "beats_all"
    assert metrics.mcnemar_exact(0, 0) == 1.0


def test_a_tie_is_never_a_loss():
    same = [1.0, 0.0, 1.0, 1.0] * 10
    results = {"fine_tuned": {"format_accuracy": 0.75}, "frontier": {"format_accuracy": 0.75}}
    examples = {"fine_tuned": {"format_accuracy": same}, "frontier": {"format_accuracy": list(same)}}
    outcome = metrics.verdict(results, ["format_accuracy"], examples)
    assert outcome["outcome"] == "inconclusive" and outcome["losses"] == [] and outcome["beats_all"] is False
    (tie,) = outcome["comparisons"]
    assert (tie["difference"], tie["ci_low"], tie["ci_high"], tie["better"]) == (0, 0, 0, None)
    assert tie["n_needed"] is None  # no number of examples separates identical answers
    # Without per-example values there is no interval: never a loss, never a win.
    bare = metrics.verdict(
        {"fine_tuned": {"label_accuracy": 0.8}, "frontier": {"label_accuracy": 0.85}}, ["label_accuracy"]
    )
    assert bare["outcome"] == "inconclusive" and bare["losses"] == []


def test_a_metric_that_does_not_apply_is_left_out_of_the_verdict():
    n = 30
    results = {
        "fine_tuned": {"label_accuracy": None, "chrf": 80.0},
        "base_zero_shot": {"label_accuracy": None, "chrf": 20.0},
        "embedding_classifier": {"label_accuracy": 0.9, "chrf": None},
    }
    examples = {
        "fine_tuned": {"label_accuracy": [None] * n, "chrf": [80.0] * n},
        "base_zero_shot": {"label_accuracy": [None] * n, "chrf": [20.0] * n},
        "embedding_classifier": {"label_accuracy": [1.0] * 27 + [0.0] * 3, "chrf": [None] * n},
    }
    nothing = metrics.verdict(results, ["label_accuracy"], examples)
    assert nothing["outcome"] == "no_signal" and nothing["comparisons"] == [] and len(nothing["skipped"]) == 2
    both = metrics.verdict(results, ["label_accuracy", "chrf"], examples)
    assert both["outcome"] == "beats_all" and both["beats_all"] is True
    assert [(c["baseline"], c["metric"]) for c in both["comparisons"]] == [("base_zero_shot", "chrf")]
    assert {o for o in metrics.OUTCOMES} == {"beats_all", "loses", "inconclusive", "no_signal"}


def test_lower_is_better_and_measured_metrics():
    results = {"fine_tuned": {"hallucination_rate": 0.1}, "frontier": {"hallucination_rate": 0.6}}
    examples = {
        "fine_tuned": {"hallucination_rate": [1.0] * 5 + [0.0] * 45},
        "frontier": {"hallucination_rate": [1.0] * 30 + [0.0] * 20},
    }
    (c,) = metrics.verdict(results, ["hallucination_rate"], examples)["comparisons"]
    assert c["difference"] == pytest.approx(-0.5) and c["ci_high"] < 0 and c["better"] is True
    # Latency: single queries measured apart, resampled apart.
    fast, slow = [10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19], [100.0, 101, 102, 103, 104, 105, 106, 107, 108, 109]
    latency = metrics.unpaired_percentile_difference(fast, slow, 50)
    assert latency["difference"] == 14 - 104 and latency["ci_high"] < 0
    # Cost is computed, not sampled: no interval; a difference under 10% is a tie.
    cost = metrics.verdict(
        {"fine_tuned": {"cost_per_query_usd": 1.00e-5}, "frontier": {"cost_per_query_usd": 1.05e-5}},
        ["cost_per_query_usd"],
    )
    assert cost["outcome"] == "inconclusive" and cost["comparisons"][0]["ci_low"] is None


def test_the_best_mark_goes_only_to_a_significant_best():
    results, examples, reference = one_example_apart()
    marks = metrics.best_marks(results, examples, reference)
    assert marks["label_accuracy"] is None  # 0.752 against 0.744: no star
    results["fine_tuned"]["chrf"], results["embedding_classifier"]["chrf"] = 90.0, None
    results["majority_label"]["chrf"] = 10.0
    examples["fine_tuned"]["chrf"], examples["majority_label"]["chrf"] = [90.0] * 117, [10.0] * 117
    assert metrics.best_marks(results, examples, reference)["chrf"] == "fine_tuned"


def test_chrf_against_a_hand_computed_example():
    # "ab" against "abc": character 1-grams P 2/2, R 2/3; 2-grams P 1/1, R 1/2; no 3- to 6-grams in the answer.
    # Averaged over the 2 effective orders: P = 1, R = 7/12; F2 = 5PR / (4P + R) = (35/12) / (55/12) = 7/11.
    assert metrics.chrf("ab", "abc") == pytest.approx(100 * 7 / 11)
    assert metrics.chrf("The export fails.", "The export fails.") == 100.0
    assert metrics.chrf("", "The export fails.") == 0.0
    assert metrics.chrf("The export fails since Monday.", "The export fails.") > metrics.chrf(
        "Lorem ipsum.", "The export fails."
    )


def test_where_the_label_is_read_from():
    labels = ["P1", "P2", "P3", "P4"]
    named = metrics.label_reader({"kind": "regex", "pattern": r"(?s)Severity (?P<label>P\d)\n.*"}, labels)
    assert named("Severity P3\nrest") == "P3" and named("P3 and more") is None
    schema = {"kind": "json_schema", "schema": {"type": "object", "properties": {"severity": {"enum": labels}}}}
    assert metrics.label_reader(schema, labels)('{"severity": "P2", "why": "P1 is worse"}') == "P2"
    assert metrics.label_reader({"kind": "regex", "pattern": "SEVERITY: P[1-4]"}, labels) is None  # names no place
    assert metrics.label_reader({"kind": "none"}, labels) is None
    references = ["SEVERITY: P2\nrest", "The export is down for everyone.", "SEVERITY: P1 again"]
    assert metrics.labels_stated(references, ["P2", "P1", "P4"], labels) == 1
    assert metrics.majority_label({"P4": 72, "P1": 10, "P2": 18, "": 5}) == ("P4", 0.72)
    assert metrics.majority_label({}) is None


# The judge against the experts, by hand. One row per answer: the judge's relevance and flag, the experts' ratings.
#   answer  judge rel  judge flag  experts' rel  -> mean  experts' flags   -> majority
#   A1      5          no          5, 4          4.5      no, no           no
#   A2      4          no          4             4        yes              yes
#   A3      4          yes         5, 4          4.5      yes, no          yes (a tie counts as unsupported)
#   A4      2          yes         2             2        yes              yes
#   A5      1          no          3             3        no               no
#   A6      3          no          1, 1          1        no, no           no
#   A7      None       None        5             -        yes              -   (the judge did not score it: left out)
#   A8      4          no          (none)        -        -                -   (no expert rated it: left out)
# Ranks (ties share their average): judge 6, 4.5, 4.5, 2, 1, 3; experts 5.5, 4, 5.5, 2, 3, 1; both have mean 3.5.
# Deviations: judge 2.5, 1, 1, -1.5, -2.5, -0.5; experts 2, .5, 2, -1.5, -.5, -2.5.
# rho = sum(dJ dE) / sqrt(sum dJ^2 sum dE^2) = (5 + .5 + 2 + 2.25 + 1.25 + 1.25) / sqrt(17 x 17) = 12.25 / 17 = 49/68.
# Flags: judge no no yes yes no no; experts no yes yes yes no no. p_o = 5/6; judge says yes 2/6, experts 3/6:
# p_e = 2/6 x 3/6 + 4/6 x 3/6 = 1/2; kappa = (5/6 - 1/2) / (1 - 1/2) = 2/3.
JUDGE_TABLE = [
    (5.0, False, [5, 4], [False, False]),
    (4.0, False, [4], [True]),
    (4.0, True, [5, 4], [True, False]),
    (2.0, True, [2], [True]),
    (1.0, False, [3], [False]),
    (3.0, False, [1, 1], [False, False]),
    (None, None, [5], [True]),
    (4.0, False, [], []),
]
JUDGE_RHO, JUDGE_KAPPA = 49 / 68, 2 / 3


def judge_rows(table=JUDGE_TABLE):
    return [{"judge_relevance": j, "judge_unsupported": f, "relevance": r, "unsupported": u} for j, f, r, u in table]


def test_the_judges_agreement_with_the_experts_by_hand():
    agreement = metrics.judge_agreement(judge_rows())
    assert agreement["n"] == 6 and agreement["ratings"] == 9  # A7 and A8 left out, not counted as 0
    assert agreement["relevance_spearman"] == pytest.approx(JUDGE_RHO, abs=1e-4)  # 0.7206
    assert agreement["unsupported_kappa"] == pytest.approx(JUDGE_KAPPA, abs=1e-4)  # 0.6667
    # Were a tie "supported", A3's experts would say no: p_o = 4/6, experts yes 2/6, p_e = 4/36 + 16/36 = 5/9,
    # kappa = (2/3 - 5/9) / (4/9) = 1/4.
    flipped = [(j, f, r, [False] if i == 2 else u) for i, (j, f, r, u) in enumerate(JUDGE_TABLE)]
    assert metrics.judge_agreement(judge_rows(flipped))["unsupported_kappa"] == pytest.approx(0.25, abs=1e-4)


def test_agreement_that_does_not_apply_is_none():
    assert metrics.spearman_rho([3, 3, 3], [1, 2, 3]) is None  # the judge gave one score: no order to compare
    assert metrics.spearman_rho([1], [1]) is None and metrics.spearman_rho([], []) is None
    assert metrics.spearman_rho([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert metrics.cohen_kappa([False] * 4, [False] * 4) is None  # one class throughout: p_e = 1
    assert metrics.cohen_kappa([], []) is None
    # One side constant, the other not: p_o = 1/2, p_e = 1 x 1/2: kappa 0, defined.
    assert metrics.cohen_kappa([False, False], [True, False]) == pytest.approx(0)
    empty = metrics.judge_agreement([])
    assert empty == {"n": 0, "ratings": 0, "relevance_spearman": None, "unsupported_kappa": None}


def test_the_judge_is_trusted_from_20_answers_and_rho_and_kappa_of_0_6():
    def warning(n, rho, kappa):
        return verdicts.judge_warning({"n": n, "relevance_spearman": rho, "unsupported_kappa": kappa})

    assert warning(20, 0.6, 0.6) == ""
    few = warning(6, JUDGE_RHO, JUDGE_KAPPA)
    assert "rests on 6 answers rated by experts (fewer than 20)" in few and "rho" not in few and "kappa" not in few
    low = warning(40, 0.59, 0.2)
    assert "Spearman's rho on relevance is 0.59 (under 0.6)" in low and "Cohen's kappa" in low and "rests" not in low
    assert "kappa on the unsupported flag is undefined" in warning(40, 0.9, None)
    assert "rests on 0 answers" in warning(0, None, None) and "undefined" not in warning(0, None, None)
