"""Reads of evaluation data: a project's evaluations, one evaluation's per-example comparison, the history."""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from curation.models import DatasetVersion, DatasetVersionItem, Example, Project
from training.models import TrainingRun

from . import metrics, verdicts
from .models import AnswerRating, Evaluation, EvaluationAnswer, GenerationJob

FAILED = Q(format_ok=False) | Q(label_ok=False) | Q(hallucinated=True)
RATING_SAMPLE = 100  # answers offered to the experts to rate, per evaluation
SHAPE_SAMPLE = 2000  # test examples read to tell whether the reference answers state their label
PRIMARY_BY_SHAPE = {
    "format": ["format_accuracy", "label_accuracy"],
    "label": ["label_accuracy", "macro_f1"],
    "free-form": ["chrf", "content_relevance"],
}


def evaluation_task_shape(
    *, project: Project, version: DatasetVersion | None, judge_configured: bool, queries: list[dict] | None = None
) -> dict[str, Any]:
    """The task's shape, the primary metrics that fit it, and why, in words:

    - `format`: an output format is set; format accuracy, and label accuracy when labels can be read from answers
      (else chrF against the references, since a format alone says nothing of the content);
    - `label`: most test examples carry a label and it can be read from the answers (the output format names where
      it is, or most reference answers state it); label accuracy and macro-F1;
    - `free-form`: neither; chrF against the reference answers and content relevance (the judge, or the embedding
      similarity without one).

    `label_source` ("format", "references" or None) says how a generated answer's label is read; None means label
    metrics do not apply to generated answers (they still do to the classifier and the majority-label row).
    `queries` ({"reference", "label"} per test example) saves reading the split again."""
    labels = [label for label in project.labels or [] if label]
    kind = (project.output_format or {}).get("kind", "none")
    if queries is None:
        items = version.items.filter(split="test").order_by("id") if version else DatasetVersionItem.objects.none()
        queries = [
            {"reference": _reference(item["messages"]), "label": item["label"] or None}
            for item in items.values("messages", "label")[:SHAPE_SAMPLE]
        ]
    labelled = [q for q in queries if q["label"]] if labels else []
    stated = metrics.labels_stated([q["reference"] for q in labelled], [q["label"] for q in labelled], labels)
    if labelled and metrics.label_reader(project.output_format, labels) is not None:
        label_source = "format"
        labels_why = "the output format names where the label is"
    elif labelled and stated * 2 > len(labelled):
        label_source = "references"
        labels_why = f"{stated} of {len(labelled)} labelled reference answers state their label"
    else:
        label_source = None
        if not labels:
            labels_why = "the project has no label set"
        elif not labelled:
            labels_why = "no test example carries a label"
        else:
            labels_why = (
                f"only {stated} of {len(labelled)} labelled reference answers state their label (labels kept beside "
                "the answers), and the output format names no place for it"
            )
    relevance = "the judge's 1-5 relevance" if judge_configured else "embedding similarity (no judge configured)"
    content = f"chrF against the reference answers (character n-grams, sacrebleu) and {relevance}"
    if kind != "none":
        shape = "format"
        if label_source:
            primary = ["format_accuracy", "label_accuracy"]
            reason = f"An output format is set ({kind}): format accuracy, and label accuracy since {labels_why}."
        else:
            primary = ["format_accuracy", "chrf"]
            reason = (
                f"An output format is set ({kind}): format accuracy; no label can be read from the answers "
                f"({labels_why}), so chrF against the reference answers says how close their content is."
            )
    elif label_source and len(labelled) * 2 >= len(queries):
        shape = "label"
        primary = PRIMARY_BY_SHAPE["label"]
        reason = (
            f"Examples carry labels and {labels_why}: label accuracy, and macro-F1 so that rare labels count as much "
            "as frequent ones."
        )
    else:
        shape = "free-form"
        primary = PRIMARY_BY_SHAPE["free-form"]
        if label_source:
            carried = f"only {len(labelled)} of {len(queries)} test examples carry a label"
            reason = f"No output format, and {carried}: {content}."
        else:
            reason = f"No output format, and label accuracy does not apply ({labels_why}): {content}."
    return {
        "task_shape": shape,
        "primary": primary,
        "primary_reason": reason,
        "label_source": label_source,
        "labels_why": labels_why,
    }


def _reference(messages: list[dict]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")


def evaluation_list(*, project: Project) -> QuerySet[Evaluation]:
    return Evaluation.objects.filter(project=project).select_related("dataset_version", "created_by", "training_run")


def generation_job_list(*, project: Project) -> QuerySet[GenerationJob]:
    """The project's generation jobs, newest first."""
    return GenerationJob.objects.filter(project=project).select_related("project", "created_by")


def evaluation_examples(
    *, evaluation: Evaluation, failures_only: bool = False, offset: int = 0, limit: int = 50, system: str = "fine_tuned"
) -> list[dict[str, Any]]:
    """Test examples with the reference and every system's answer side by side; the ones `system` failed (wrong
    format, wrong label, or an unsupported claim) first."""
    answers = EvaluationAnswer.objects.filter(evaluation=evaluation)
    failed = set(answers.filter(FAILED, system=system).values_list("item_id", flat=True))
    items = sorted(set(answers.values_list("item_id", flat=True)), key=lambda pk: (pk not in failed, pk))
    if failures_only:
        items = [pk for pk in items if pk in failed]
    page = items[offset : offset + limit]
    by_item: dict[int, dict[str, Any]] = {}
    for answer in answers.filter(item_id__in=page).order_by("item_id", "id"):
        by_item.setdefault(answer.item_id, {})[answer.system] = {
            "id": answer.id,
            "answer": answer.answer,
            "format_ok": answer.format_ok,
            "label": answer.label,
            "label_ok": answer.label_ok,
            "relevance": answer.relevance,
            "chrf": answer.chrf,
            "hallucinated": answer.hallucinated,
            "unsupported": answer.unsupported,
        }
    rows = []
    for item in DatasetVersionItem.objects.filter(pk__in=page).values("id", "example_id", "messages", "label"):
        messages = item["messages"]
        last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
        rows.append(
            {
                "item": item["id"],
                "example": item["example_id"],
                "messages": messages[:last],
                "reference": messages[last]["content"],
                "reference_label": item["label"],
                "answers": {name: by_item.get(item["id"], {}).get(name) for name in evaluation.systems},
                "failed": item["id"] in failed,
            }
        )
    rows.sort(key=lambda row: page.index(row["item"]))
    return rows


def evaluation_failures(*, evaluation: Evaluation, system: str = "fine_tuned") -> int:
    return EvaluationAnswer.objects.filter(evaluation=evaluation, system=system).filter(FAILED).count()


def evaluation_table(*, evaluation: Evaluation) -> dict[str, Any]:
    """The systems x metrics table with the best value of each metric marked where it is significantly better than
    the runner-up (decided when the evaluation ran; an evaluation from before intervals has no marks), and the charts'
    series."""
    scored = [entry for entry in evaluation.results if entry.get("status") == "succeeded"]
    names = list(metrics.HIGHER_IS_BETTER)
    best = {name: (evaluation.verdict or {}).get("best", {}).get(name) for name in names}
    shown = [name for name in names if any(e["metrics"].get(name) is not None for e in scored)]
    return {
        "metrics": shown,
        "best": best,
        "marked": "best" in (evaluation.verdict or {}),
        "chart": {
            "systems": [e["name"] for e in scored],
            # cost in USD per 1,000 queries, as the table shows it
            "series": {
                name: [
                    _per_thousand(e["metrics"].get(name)) if name == "cost_per_query_usd" else e["metrics"].get(name)
                    for e in scored
                ]
                for name in shown
            },  # fmt: skip
        },
    }


def evaluation_verdict(*, evaluation: Evaluation, system_names: dict[str, str]) -> dict[str, Any]:
    """The verdict as the page shows it: its outcome (older verdicts, from before intervals, read as won or lost),
    and each comparison with the baseline's name, lost and undecided ones first."""
    verdict = dict(evaluation.verdict or {})
    if "outcome" not in verdict:
        verdict["outcome"] = "beats_all" if verdict.get("beats_all") else "loses" if verdict.get("losses") else ""
    names = {**system_names, **{e["system"]: e["name"] for e in evaluation.results}}
    order = {False: 0, None: 1, True: 2}
    verdict["comparisons"] = sorted(
        ({**c, "baseline_name": names.get(c["baseline"], c["baseline"])} for c in verdict.get("comparisons", [])),
        key=lambda c: order[c["better"]],
    )
    return verdict


def _per_thousand(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 6)


def evaluation_history(*, project: Project, limit: int = 20) -> dict[str, Any]:
    """The project's finished evaluations over time: each system's primary metrics, oldest first."""
    finished = list(
        Evaluation.objects.filter(project=project, status=Evaluation.Status.SUCCEEDED)
        .order_by("-created_at")
        .values("id", "created_at", "results", "primary_metrics", "training_run_id")[:limit]
    )[::-1]
    series: dict[str, list] = {}
    for index, evaluation in enumerate(finished):
        for entry in evaluation["results"]:
            if entry.get("status") != "succeeded":
                continue
            for metric in evaluation["primary_metrics"]:
                key = f"{entry['name']}: {metric.replace('_', ' ')}"
                series.setdefault(key, [None] * len(finished))[index] = entry["metrics"].get(metric)
    return {
        "labels": [f"#{e['id']} (run #{e['training_run_id']})" for e in finished],
        "series": series,
    }


OUTCOMES = {
    "beats_all": "beats all baselines",
    "loses": "loses to a baseline",
    "inconclusive": "inconclusive",
    "no_signal": "no verdict",
}
HISTORY_LIMIT = 100


def _outcome(verdict: dict) -> str:
    """The verdict's outcome; verdicts from before intervals read as won or lost (as evaluation_verdict reads them)."""
    if not verdict:
        return ""
    return verdict.get("outcome") or (
        "beats_all" if verdict.get("beats_all") else "loses" if verdict.get("losses") else ""
    )


def project_history(*, project: Project, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The project's dataset versions, training runs and evaluations on one time line, newest first (the newest
    `limit` entries in all), so that a lead sees which round of review moved the verdict:

    - a version: its number, examples, and the version before it (whose diff says what the review changed);
    - a run: the version it trained on, its base model, method and status;
    - an evaluation: its run and version, its verdict (outcome, summary), the fine-tuned model's value of each primary
      metric beside the one of the finished evaluation before it, and whether the verdict moved since that one (and
      on which versions, for their diff).

    Each kind is read newest first up to limit + 1 rows (the extra one is the last entry's predecessor); a handful of
    columns, never a version's items."""
    versions = list(
        DatasetVersion.objects.filter(project=project)
        .order_by("-number")
        .values("id", "number", "created_at", "counts", "created_by__username")[: limit + 1]
    )
    runs = list(
        TrainingRun.objects.filter(project=project)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "created_at",
            "status",
            "base_model",
            "method",
            "dataset_version_id",
            "dataset_version__number",
            "created_by__username",
        )[:limit]
    )
    evaluations = list(
        Evaluation.objects.filter(project=project)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "created_at",
            "status",
            "training_run_id",
            "dataset_version_id",
            "dataset_version__number",
            "primary_metrics",
            "results",
            "verdict",
            "created_by__username",
        )[: limit + 1]
    )
    entries = []
    for index, row in enumerate(versions[:limit]):
        before = versions[index + 1] if index + 1 < len(versions) else None
        entries.append(
            _entry(
                row,
                kind="version",
                status="frozen",
                version=(row["id"], row["number"]),
                examples=sum(split.get("total", 0) for split in (row["counts"] or {}).values()),
                previous_version={"id": before["id"], "number": before["number"]} if before else None,
            )
        )
    for row in runs:
        entries.append(
            _entry(
                row,
                kind="run",
                status=row["status"],
                version=(row["dataset_version_id"], row["dataset_version__number"]),
                base_model=row["base_model"],
                method=row["method"],
            )
        )
    finished = [row for row in evaluations if row["status"] == Evaluation.Status.SUCCEEDED]
    earlier = {row["id"]: finished[i + 1] if i + 1 < len(finished) else None for i, row in enumerate(finished)}
    for row in evaluations[:limit]:
        entries.append(_evaluation_entry(row, earlier.get(row["id"])))
    order = {"evaluation": 0, "run": 1, "version": 2}  # at the same instant, the later stage first
    entries.sort(key=lambda entry: (entry["created_at"], -order[entry["kind"]], entry["id"]), reverse=True)
    return entries[:limit]


def _entry(row: dict, *, kind: str, status: str, version: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": row["id"],
        "created_at": row["created_at"],
        "created_by": row["created_by__username"],
        "status": status,
        "dataset_version": {"id": version[0], "number": version[1]},
        "examples": None,
        "previous_version": None,
        "base_model": "",
        "method": "",
        "training_run": None,
        "outcome": "",
        "outcome_name": "",
        "summary": "",
        "metrics": [],
        "previous_evaluation": None,
        "verdict_moved": False,
        **extra,
    }


def _fine_tuned(results: list[dict]) -> dict[str, Any]:
    return next((e["metrics"] for e in results or [] if e.get("system") == "fine_tuned" and e.get("metrics")), {})


def _evaluation_entry(row: dict, before: dict | None) -> dict[str, Any]:
    """An evaluation on the time line, beside the finished evaluation before it."""
    outcome = _outcome(row["verdict"]) if row["status"] == Evaluation.Status.SUCCEEDED else ""
    mine, theirs = _fine_tuned(row["results"]), _fine_tuned(before["results"]) if before else {}
    previous = None
    if before is not None:
        previous_outcome = _outcome(before["verdict"])
        previous = {
            "id": before["id"],
            "outcome": previous_outcome,
            "outcome_name": OUTCOMES.get(previous_outcome, ""),
            "dataset_version": {"id": before["dataset_version_id"], "number": before["dataset_version__number"]},
        }
    return _entry(
        row,
        kind="evaluation",
        status=row["status"],
        version=(row["dataset_version_id"], row["dataset_version__number"]),
        training_run=row["training_run_id"],
        outcome=outcome,
        outcome_name=OUTCOMES.get(outcome, ""),
        summary=(row["verdict"] or {}).get("summary", "") if outcome else "",
        metrics=[
            {
                "metric": metric,
                "name": verdicts.METRIC_NAMES.get(metric, metric),
                "value": mine.get(metric),
                "previous": theirs.get(metric) if before else None,
            }
            for metric in row["primary_metrics"] or []
        ],
        previous_evaluation=previous,
        verdict_moved=bool(outcome and previous and previous["outcome"] != outcome),
    )


# --- Trusting the judge: the experts' blind ratings and the judge's agreement with them ------------------------------


def _judged(evaluation: Evaluation) -> QuerySet[EvaluationAnswer]:
    """The answers the judge scored (relevance and the unsupported flag); a classifier's bare label is not rated."""
    return EvaluationAnswer.objects.filter(
        evaluation=evaluation, relevance__isnull=False, hallucinated__isnull=False
    ).exclude(system="embedding_classifier")


def rating_sample(*, evaluation: Evaluation) -> list[int]:
    """The answers the experts are asked to rate, in the order they are shown: up to RATING_SAMPLE of the answers the
    judge scored, across systems, shuffled with a seed of the evaluation's id, so every rater meets them in the same
    order (their ratings overlap from the first) and a reload shows the same one. Ids only: no system name."""
    ids = list(_judged(evaluation).order_by("id").values_list("id", flat=True))
    random.Random(f"judge-agreement:{evaluation.pk}").shuffle(ids)
    return ids[:RATING_SAMPLE]


def rating_next(*, evaluation: Evaluation, rater: AbstractBaseUser, answer_id: int | None = None) -> dict[str, Any]:
    """What the rating page shows a rater: the answer `answer_id` of the sample (to change a rating), else the first
    of the sample they have not rated; with its source (the turns before it, and any sources in the example's
    metadata), the reference answer, its place in the sample and the rater's earlier rating of it. Never the system
    that wrote it. `answer` is None when the rater has rated the whole sample (or `answer_id` is not in it)."""
    sample = rating_sample(evaluation=evaluation)
    mine = {
        row["answer_id"]: row
        for row in AnswerRating.objects.filter(rater=rater, answer_id__in=sample).values(
            "answer_id", "relevance", "unsupported"
        )
    }
    state: dict[str, Any] = {"total": len(sample), "rated": len(mine), "answer": None}
    if answer_id is None:
        answer_id = next((pk for pk in sample if pk not in mine), None)
    if answer_id is None or answer_id not in sample:
        return state
    answer = EvaluationAnswer.objects.values("id", "answer", "item__messages", "item__example_id").get(pk=answer_id)
    messages = answer["item__messages"]
    last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
    metadata = Example.objects.filter(pk=answer["item__example_id"]).values_list("metadata", flat=True).first() or {}
    sources = metadata.get("sources") or []
    return {
        **state,
        "answer": {
            "id": answer["id"],
            "text": answer["answer"],
            "messages": messages[:last],
            "sources": [sources] if isinstance(sources, str) else sources,
            "reference": messages[last]["content"],
            "position": sample.index(answer_id) + 1,
            "rating": mine.get(answer_id),
        },
    }


def judge_agreement(*, evaluation: Evaluation) -> dict[str, Any]:
    """The judge's agreement with the experts' ratings of this evaluation's answers (metrics.judge_agreement: n,
    ratings, relevance_spearman, unsupported_kappa), and `warning`, in words, when it is too low or too thin to trust
    the judge (verdicts.judge_warning); no warning when the judge scored no answer (nothing rests on it)."""
    rows: dict[int, dict[str, Any]] = {}
    ratings = AnswerRating.objects.filter(answer__evaluation=evaluation).values(
        "answer_id", "answer__relevance", "answer__hallucinated", "relevance", "unsupported"
    )
    for rating in ratings.order_by("answer_id", "id"):
        row = rows.setdefault(
            rating["answer_id"],
            {
                "judge_relevance": rating["answer__relevance"],
                "judge_unsupported": rating["answer__hallucinated"],
                "relevance": [],
                "unsupported": [],
            },
        )
        row["relevance"].append(rating["relevance"])
        row["unsupported"].append(rating["unsupported"])
    agreement = metrics.judge_agreement(rows.values())
    judged = agreement["n"] > 0 or _judged(evaluation).exists()
    agreement["warning"] = verdicts.judge_warning(agreement) if judged else ""
    return agreement
