"""Reads of data quality: the last scan, duplicate clusters, token lengths, the readiness verdict and the dashboard."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, QuerySet, Sum

from .. import formats, quality
from ..models import DatasetVersion, DatasetVersionItem, Example, Project, QualityScan, ReviewStatus
from .projects import _count_by, example_counts
from .review import review_progress


def quality_scan_latest(*, project: Project, finished: bool = True) -> QualityScan | None:
    scans = QualityScan.objects.filter(project=project)
    if finished:
        scans = scans.filter(status=QualityScan.Status.SUCCEEDED)
    return scans.order_by("-created_at").first()


def _approved(project: Project) -> QuerySet[Example]:
    return Example.objects.filter(project=project, status=ReviewStatus.APPROVED)


def _not_rejected_clustered(project: Project) -> QuerySet[Example]:
    # Served by the partial index on clustered examples: a small share of the project.
    return Example.objects.filter(project=project, cluster_id__isnull=False).exclude(status=ReviewStatus.REJECTED)


def duplicate_clusters(*, project: Project) -> QuerySet:
    """The one definition of a duplicate cluster, used by the dashboard, the API and the readiness verdict alike:
    examples the last quality scan found exact or near duplicates of each other, two or more of them not rejected.
    Pending examples count (a duplicate is best found before anyone reviews it twice); rejected ones do not (keeping
    one and rejecting the rest resolves a cluster). Rows of {cluster_id, size}, largest first."""
    return (
        _not_rejected_clustered(project)
        .values("cluster_id")
        .annotate(size=Count("id"))
        .filter(size__gt=1)
        .order_by("-size", "cluster_id")
    )


def duplicate_cluster_totals(*, project: Project) -> dict[str, int]:
    """How many duplicate clusters there are (duplicate_clusters), and how many examples they hold."""
    clusters = duplicate_clusters(project=project).order_by()
    totals = clusters.aggregate(clusters=Count("cluster_id"), examples=Sum("size"))
    return {"clusters": totals["clusters"] or 0, "examples": totals["examples"] or 0}


def duplicate_cluster_members(*, project: Project, cluster_ids: list[int]) -> dict[int, list[Example]]:
    """The members (not rejected) of these clusters, in id order."""
    members: dict[int, list[Example]] = defaultdict(list)
    for example in _not_rejected_clustered(project).filter(cluster_id__in=cluster_ids).order_by("id"):
        members[example.cluster_id].append(example)
    return members


def duplicate_cluster_list(*, project: Project, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """A page of duplicate clusters (duplicate_clusters), largest first, each with its members."""
    rows = list(duplicate_clusters(project=project)[offset : offset + limit])
    members = duplicate_cluster_members(project=project, cluster_ids=[row["cluster_id"] for row in rows])
    return [
        {"cluster_id": row["cluster_id"], "size": row["size"], "examples": members[row["cluster_id"]]} for row in rows
    ]


def dataset_version_latest(*, project: Project) -> DatasetVersion | None:
    return DatasetVersion.objects.filter(project=project).order_by("-number").first()


def readiness_stats(*, project: Project, max_length: int | None = None) -> dict[str, Any]:
    """The numbers the readiness verdict needs, all from database aggregates. `max_length`: the tokens a run would
    take (the run being prepared; the project's max_seq_length, a run's default, when none is)."""
    scan = quality_scan_latest(project=project)
    version = dataset_version_latest(project=project)
    counts = example_counts(project=project)
    by_format = _count_by(counts, "format_state", status=ReviewStatus.APPROVED)
    stats: dict[str, Any] = {
        "approved": sum(by_format.values()),
        "labels": list(project.labels),  # the label set: a label nobody has approved yet still counts (as 0)
        "label_counts": {
            label: n for label, n in _count_by(counts, "label", status=ReviewStatus.APPROVED).items() if label
        },
        "edge_cases": sum(_count_by(counts, "status", status=ReviewStatus.APPROVED, edge_case=True).values()),
        "scan": {"threshold": scan.threshold, "finished_at": scan.finished_at} if scan else None,
        "duplicate_clusters": duplicate_cluster_totals(project=project)["clusters"],
        "format_kind": (project.output_format or {}).get("kind", "none"),
        "format_checked": by_format.get(1, 0) + by_format.get(2, 0),
        "format_ok": by_format.get(1, 0),
        "label_only_share": _label_only_share(project),
        "base_model_score": project.baseline_score,
        "version": None,
        "token_lengths": over_length_examples(
            project=project, max_length=max_length or project.max_seq_length, scan=scan
        )
        if scan
        else None,
    }
    if version is not None:
        stats["version"] = {
            "number": version.number,
            "size": sum(split["total"] for split in version.counts.values()),
            "not_approved_now": _version_not_approved(version),
            "leaking_clusters": _version_leaks(version, scan),
        }
    return stats


def _version_not_approved(version: DatasetVersion) -> int:
    """Examples of the version that are no longer approved, or deleted. Every example was approved when frozen, so
    only those changed since can have left: found through the (project, updated_at) index, then looked up."""
    changed = Example.objects.filter(project_id=version.project_id, updated_at__gte=version.created_at).exclude(
        status=ReviewStatus.APPROVED
    )
    items = DatasetVersionItem.objects.filter(version=version)
    return items.filter(example__in=changed).count() + items.filter(example__isnull=True).count()


def _version_leaks(version: DatasetVersion, scan: QualityScan | None) -> int:
    """Clusters across the version's splits. A version is frozen with the clusters of the scan before it, so none
    cross; a scan after it counts them again (services.quality_scan_run) and this reads its result."""
    if scan is None or scan.finished_at is None or scan.finished_at < version.created_at:
        return 0
    return scan.stats.get("leaks", {}).get(str(version.pk), 0)


def _label_only_share(project: Project, sample: int = 500) -> float:
    """Share of approved answers (a sample) that are nothing but their label: a classification task."""
    if not project.labels:
        return 0.0
    rows = list(_approved(project).order_by("id").values_list("messages", "label")[:sample])
    if not rows:
        return 0.0
    only = sum(1 for messages, label in rows if formats.last_answer(messages).strip() == label)
    return only / len(rows)


def readiness(*, project: Project, max_length: int | None = None) -> dict[str, Any]:
    return quality.readiness(readiness_stats(project=project, max_length=max_length))


def _over_length_ids(project: Project) -> list[int] | None:
    """The ids the last quality scan counted over the project's max length, when it kept them all."""
    scan = quality_scan_latest(project=project)
    longest = scan.stats.get("longest") if scan else None
    if longest is None:
        return None
    limit = project.max_seq_length
    if len(longest) >= scan.stats["longest_kept"] and longest[-1][1] > limit:
        return None
    return [example_id for example_id, tokens in longest if tokens > limit]


def over_length_examples(
    *,
    project: Project,
    max_length: int,
    version: DatasetVersion | None = None,
    split: str | None = None,
    scan: QualityScan | None = None,
    named: int = 10,
) -> dict[str, Any] | None:
    """The examples longer than `max_length` tokens (chat template included), as the last quality scan counted them:
    the approved ones, or those of a version's split. None before a scan that kept the lengths.

    count: how many; complete: False when more examples are over than the scan kept (count is then a lower bound);
    examples: the longest `named` ({id, tokens}); near: for an estimate, how many more are within its error of the
    limit; exact: counted with the project's tokenizer; counted_by: how the scan counted."""
    scan = scan or quality_scan_latest(project=project)
    if scan is None or "longest" not in scan.stats:
        return None
    stats = scan.stats
    longest = stats["longest"]
    complete = len(longest) < stats["longest_kept"] or longest[-1][1] <= max_length
    low = max_length / (1 + stats["error"][1]) if stats.get("error") else max_length
    candidates = {example_id: tokens for example_id, tokens in longest if tokens > low}
    if version is not None:
        items = DatasetVersionItem.objects.filter(version=version, example_id__in=candidates)
        kept = (items.filter(split=split) if split else items).values_list("example_id", flat=True)
    else:  # the approved examples: what readiness judges
        kept = _approved(project).filter(pk__in=candidates).values_list("pk", flat=True)
    kept = set(kept)
    over = [(example_id, n) for example_id, n in candidates.items() if example_id in kept and n > max_length]
    return {
        "max_length": max_length,
        "count": len(over),
        "complete": complete,
        "examples": [{"id": example_id, "tokens": tokens} for example_id, tokens in over[:named]],
        "near": sum(1 for example_id, n in candidates.items() if example_id in kept and n <= max_length),
        "exact": bool(stats.get("exact")),
        "counted_by": stats.get("estimate", ""),
    }


def dashboard_stats(*, project: Project) -> dict[str, Any]:
    """What the dataset dashboard charts: status counts, labels with their deficits, token lengths, duplicates."""
    progress = review_progress(project=project)
    counts = example_counts(project=project)
    approved_labels = _count_by(counts, "label", status=ReviewStatus.APPROVED)
    all_labels = _count_by(counts, "label")
    labels = project.labels or sorted(label for label in all_labels if label)
    approved_by_label = {label: approved_labels.get(label, 0) for label in labels}
    counts = list(approved_by_label.values())
    scan = quality_scan_latest(project=project)
    running = quality_scan_latest(project=project, finished=False)
    return {
        "progress": progress,
        "labels": labels,
        "approved_by_label": approved_by_label,
        "all_by_label": {label: all_labels.get(label, 0) for label in labels},
        "imbalance_ratio": (max(counts) / min(counts)) if counts and min(counts) else None,
        "deficits": quality.label_deficits(approved_by_label, max_ratio=quality.THRESHOLDS.max_imbalance_ratio),
        "scan": scan,
        "duplicates": duplicate_cluster_totals(project=project),
        "scan_pending": running is not None
        and running.status in (QualityScan.Status.QUEUED, QualityScan.Status.RUNNING),
        "tokens": scan.stats if scan else None,
    }
