"""Reads of the review: progress, drafts, the previous example, disagreements, agreement and each expert's numbers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncHour

from ..models import Draft, Example, ExampleCounter, Project, Review, ReviewStatus


def review_progress(*, project: Project) -> dict[str, int]:
    """Examples by status, and how many are reviewed (from the maintained counters: cheap at any size)."""
    return review_progress_many(projects=[project])[project.pk]


def review_progress_many(*, projects: list[Project]) -> dict[int, dict[str, int]]:
    """review_progress of several projects in one query (the project list)."""
    counts: dict[int, dict[str, int]] = {project.pk: {} for project in projects}
    rows = (
        ExampleCounter.objects.filter(project__in=[project.pk for project in projects])
        .values_list("project_id", "status")
        .annotate(count=Sum("n"))
        .order_by()
    )
    for project_id, status, count in rows:
        if count:
            counts[project_id][status] = counts[project_id].get(status, 0) + count
    return {project_id: progress_of(by_status) for project_id, by_status in counts.items()}


def progress_of(by_status: dict[str, int]) -> dict[str, int]:
    """The review progress from the examples counted by status: total, reviewed, and each status."""
    total = sum(by_status.values())
    return {"total": total, "reviewed": total - by_status.get(ReviewStatus.PENDING, 0), **by_status}


def draft_get(*, example: Example, user: AbstractBaseUser) -> Draft | None:
    return Draft.objects.filter(example=example, user=user).first()


def example_previous_reviewed(
    *, project: Project, reviewer: AbstractBaseUser, before: Example | None, reviewed_before: bool = True
) -> Example | None:
    """The example this reviewer reviewed last before `before` (the "previous" key).

    reviewed_before=False says the reviewer has not reviewed `before` (a fresh example from the queue), which
    spares a query.
    """
    reviews = Review.objects.filter(example__project=project, reviewer=reviewer).order_by("-updated_at")
    if before is not None and reviewed_before:
        reviews = reviews.exclude(example=before)
        mine = Review.objects.filter(example=before, reviewer=reviewer).values_list("updated_at", flat=True).first()
        if mine is not None:
            reviews = reviews.filter(updated_at__lt=mine)
    review = reviews.select_related("example").first()
    return review.example if review else None


def disagreement_list(*, project: Project) -> QuerySet[Example]:
    """Examples whose required reviews disagree, for the lead to settle."""
    return (
        Example.objects.filter(project=project, disputed=True)
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(round=F("example__review_round")).select_related("reviewer"),
            )
        )
        .order_by("id")
    )


def agreement(*, project: Project) -> dict[str, Any]:
    """Inter-annotator agreement on the labels of examples reviewed more than once.

    Two reviewers in all: Cohen's kappa. More: Krippendorff's alpha (nominal), which also copes with reviewers who
    did not see every example. Per label, the same statistic on "this label or not". A rejected example counts as
    the label "rejected", so disagreeing on whether to keep an example counts too.
    """
    rows = Review.objects.filter(
        example__project=project, example__review_count__gte=2, round=F("example__review_round")
    ).values_list("example_id", "reviewer_id", "decision", "label")
    ratings: dict[int, dict[int, str]] = defaultdict(dict)
    for example_id, reviewer_id, decision, label in rows:
        ratings[example_id][reviewer_id] = label if decision == Review.Decision.APPROVED else decision
    reviewers = sorted({reviewer for by in ratings.values() for reviewer in by})
    result: dict[str, Any] = {"examples": len(ratings), "reviewers": len(reviewers), "overall": None, "per_label": {}}
    if len(ratings) < 2 or len(reviewers) < 2:
        result["method"] = None
        return result
    categories = sorted({value for by in ratings.values() for value in by.values()})
    if len(reviewers) == 2:
        result["method"] = "Cohen's kappa"
        first, second = reviewers
        pairs = [(by[first], by[second]) for by in ratings.values() if first in by and second in by]
        result["overall"] = _kappa([a for a, _ in pairs], [b for _, b in pairs])
        for category in categories:
            result["per_label"][category] = _kappa([a == category for a, _ in pairs], [b == category for _, b in pairs])
    else:
        result["method"] = "Krippendorff's alpha"
        index = {category: number for number, category in enumerate(categories)}
        matrix = [[index[by[r]] if r in by else None for by in ratings.values()] for r in reviewers]
        result["overall"] = _alpha(matrix)
        for category in categories:
            binary = [[None if v is None else float(v == index[category]) for v in row] for row in matrix]
            result["per_label"][category] = _alpha(binary)
    return result


def _kappa(a: list, b: list) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if not a or (len(set(a)) == 1 and set(a) == set(b)):
        return 1.0 if a else None  # perfect agreement on a single category: kappa is undefined, agreement is total
    return round(float(cohen_kappa_score(a, b)), 3)


def _alpha(matrix: list[list]) -> float | None:
    import krippendorff
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    values = data[~np.isnan(data)]
    if values.size == 0:
        return None
    if len(np.unique(values)) == 1:
        return 1.0
    return round(float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")), 3)


def expert_stats(*, project: Project) -> list[dict[str, Any]]:
    """Per expert: reviews, reviews per active hour, and how often their call matched the example's final one."""
    reviews = Review.objects.filter(example__project=project)
    per_reviewer = (
        reviews.values("reviewer__username")
        .annotate(
            reviews=Count("id"),
            active_hours=Count(TruncHour("created_at"), distinct=True),
            settled=Count(
                "id",
                filter=Q(example__review_count__gte=2, example__disputed=False)
                & ~Q(example__status=ReviewStatus.PENDING),
            ),
            agreed=Count(
                "id",
                filter=Q(example__review_count__gte=2, example__disputed=False, decision=F("example__status"))
                & (Q(label=F("example__label")) | ~Q(decision=Review.Decision.APPROVED)),
            ),
        )
        .order_by("reviewer__username")
    )
    stats = []
    for row in per_reviewer:
        stats.append(
            {
                "username": row["reviewer__username"],
                "reviews": row["reviews"],
                "per_hour": round(row["reviews"] / row["active_hours"], 1) if row["active_hours"] else None,
                "agreement": round(row["agreed"] / row["settled"], 3) if row["settled"] else None,
            }
        )
    return stats
