"""Reads of evaluation data: a project's evaluations, one evaluation's per-example comparison, the history."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from curation.models import DatasetVersionItem, Project

from . import metrics
from .models import Evaluation, EvaluationAnswer

FAILED = Q(format_ok=False) | Q(label_ok=False) | Q(hallucinated=True)


def evaluation_list(*, project: Project) -> QuerySet[Evaluation]:
    return Evaluation.objects.filter(project=project).select_related("dataset_version", "created_by", "training_run")


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
            "answer": answer.answer,
            "format_ok": answer.format_ok,
            "label": answer.label,
            "label_ok": answer.label_ok,
            "relevance": answer.relevance,
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
    """The systems x metrics table with the best value of each metric marked, and the charts' series."""
    scored = [entry for entry in evaluation.results if entry.get("status") == "succeeded"]
    names = list(metrics.HIGHER_IS_BETTER)
    best = {name: metrics.best({e["system"]: e["metrics"].get(name) for e in scored}, name) for name in names}
    shown = [name for name in names if any(e["metrics"].get(name) is not None for e in scored)]
    return {
        "metrics": shown,
        "best": best,
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
