"""The verdict in words: which system an evaluation's fine-tune beats, on what, by how much and with what confidence,
what would settle it, and the names the pages use for systems and metrics. No Django: read from the figures alone."""

from __future__ import annotations

from . import metrics

SYSTEM_NAMES = {
    "fine_tuned": "Fine-tuned",
    "base_zero_shot": "Base model, zero-shot",
    "base_best_prompt": "Base model, best prompt",
    "frontier": "Frontier model",
    "embedding_classifier": "Embeddings + classifier",
    "majority_label": "Majority label (reference)",
}
METRIC_NAMES = {
    "format_accuracy": "format accuracy",
    "label_accuracy": "label accuracy",
    "macro_f1": "macro-F1",
    "content_relevance": "content relevance",
    "chrf": "chrF",
    "hallucination_rate": "hallucination rate",
    "latency_p50_ms": "latency p50",
    "latency_p95_ms": "latency p95",
    "cost_per_query_usd": "cost per query",
}


def verdict(results: list[dict], primary: list[str], per_example: dict, queries: list[dict], shape: dict) -> dict:
    """The sentence the dashboard leads with, the comparisons behind it (each with its 95% interval), how many test
    examples it rests on, what would make it conclusive, why these primary metrics, and the table's best marks."""
    scored = {entry["system"]: entry["metrics"] for entry in results if entry["status"] == "succeeded"}
    absent = [entry["name"] for entry in results if entry["status"] != "succeeded"]
    names = " and ".join(METRIC_NAMES[m] for m in primary)
    n = len(queries)
    reason = shape["primary_reason"]
    if list(primary) != shape["primary"]:
        defaults = " and ".join(METRIC_NAMES[m] for m in shape["primary"])
        reason = f"Chosen at launch. For this {shape['task_shape']} task the default is {defaults}: {reason}"
    about = {"n": n, "primary": primary, "task_shape": shape["task_shape"], "primary_reason": reason}
    if "fine_tuned" not in scored:
        return {
            "outcome": "no_signal", "beats_all": False, "comparisons": [], "wins": [], "losses": [], "undecided": [],
            "skipped": [], "left_out": [], "n_needed": None, "best": {}, **about,
            "summary": "No verdict: the fine-tuned model was not evaluated.",
            "to_conclude": "Evaluate the fine-tuned model (its answers failed or were not asked for).",
        }  # fmt: skip
    reference_labels = [q["label"] for q in queries]
    decided = metrics.verdict(scored, primary, per_example, reference_labels)
    left_out = [
        {"metric": metric, "reason": _left_out_reason(metric, shape)}
        for metric in primary
        if scored["fine_tuned"].get(metric) is None
    ]
    by_name = {entry["system"]: entry["name"] for entry in results}
    outcome = decided["outcome"]
    to_conclude = ""
    if outcome == "beats_all":
        summary = (
            f"Fine-tuned beats all baselines on {names}: every difference's 95% interval excludes 0 "
            f"({n} test examples)."
        )
    elif outcome == "loses":
        summary = f"Fine-tuned does not beat every baseline: {_said(decided['losses'], by_name)}."
    elif outcome == "inconclusive":
        summary = (
            f"Fine-tuned: inconclusive on {n} test examples; the 95% interval of the difference includes 0 against "
            f"{_said(decided['undecided'], by_name)}."
        )
        if decided["wins"]:
            summary += f" It does beat {_said(decided['wins'], by_name)}."
        to_conclude = _to_conclude(decided, n, by_name)
    else:
        summary = f"No verdict: no baseline could be compared on {names}."
        to_conclude = f"Evaluate a baseline that has a value for {names}, or choose primary metrics that apply."
    if left_out:
        summary += " Left out: " + "; ".join(f"{METRIC_NAMES[x['metric']]} ({x['reason']})" for x in left_out) + "."
    if absent:
        summary += f" Not compared: {', '.join(absent)}."
    best = metrics.best_marks(scored, per_example, reference_labels)
    return {**decided, **about, "summary": summary, "to_conclude": to_conclude, "left_out": left_out, "best": best}


def _said(items: list[dict], names: dict[str, str]) -> str:
    """Comparisons in words: the baseline, the metric, both values, the difference and its interval."""
    said = []
    for c in items:
        if c["ci_low"] is None:
            how = f"{c['difference']:+.3g}, measured, no interval"
        else:
            how = f"{c['difference']:+.3g}, 95% CI {c['ci_low']:+.3g} to {c['ci_high']:+.3g}"
        said.append(
            f"{names[c['system']]} on {METRIC_NAMES[c['metric']]} ({c['fine_tuned']:.3g} against {c['baseline']:.3g}; "
            f"{how})"
        )
    return "; ".join(said)


def _left_out_reason(metric: str, shape: dict) -> str:
    if metric in ("label_accuracy", "macro_f1"):
        return f"does not apply to generated answers: {shape['labels_why']}"
    if metric == "format_accuracy":
        return "the project sets no output format"
    return "the fine-tuned model has no value for it"


def _to_conclude(decided: dict, n: int, names: dict[str, str]) -> str:
    """What would decide the undecided comparisons: about how many test examples, if the differences held."""
    parts = []
    if decided["n_needed"]:
        needed = decided["n_needed"]
        parts.append(
            f"About {needed:,} test examples (now {n:,}) would make the widest undecided interval exclude 0 if the "
            f"differences held (an interval narrows as 1/\u221an); at 80/10/10 that is about {needed * 10:,} "
            "examples in all."
        )
    ties = [c for c in decided["comparisons"] if c["better"] is None and not c["difference"]]
    if ties:
        tied = ", ".join(f"{names[c['baseline']]} on {METRIC_NAMES[c['metric']]}" for c in ties)
        parts.append(f"Tied with {tied}: more examples decide only if the systems really differ.")
    return " ".join(parts)


def judge_warning(agreement: dict) -> str:
    """Why the judge's relevance and hallucination scores are not to be trusted yet, in words; "" when the experts'
    ratings agree with it enough (rho and kappa at least metrics.AGREEMENT_MIN on at least metrics.RATINGS_MIN
    rated answers). An undefined statistic is not agreement: it warns too, saying why."""
    reasons = []
    n = agreement["n"]
    if n < metrics.RATINGS_MIN:
        reasons.append(
            f"it rests on {n} answer{'' if n == 1 else 's'} rated by experts (fewer than {metrics.RATINGS_MIN})"
        )
    rho, kappa = agreement["relevance_spearman"], agreement["unsupported_kappa"]
    if n and rho is None:
        reasons.append("Spearman's rho on relevance is undefined (the judge's or the experts' scores are all equal)")
    elif rho is not None and rho < metrics.AGREEMENT_MIN:
        reasons.append(f"Spearman's rho on relevance is {rho:.2f} (under {metrics.AGREEMENT_MIN})")
    if n and kappa is None:
        reasons.append(
            "Cohen's kappa on the unsupported flag is undefined (judge and experts gave one same answer throughout, "
            "so nothing shows the judge can tell a supported answer from an unsupported one)"
        )
    elif kappa is not None and kappa < metrics.AGREEMENT_MIN:
        reasons.append(f"Cohen's kappa on the unsupported flag is {kappa:.2f} (under {metrics.AGREEMENT_MIN})")
    if not reasons:
        return ""
    return "Trust the judge's relevance and hallucination scores with care: " + "; ".join(reasons) + "."
