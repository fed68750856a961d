"""Reads of curation data, always scoped to what the user may see."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Length, TruncHour
from django.http import Http404

from . import formats, quality
from .models import (
    DatasetVersion,
    DatasetVersionItem,
    Draft,
    Example,
    ExampleCounter,
    ImportJob,
    Membership,
    Project,
    QualityScan,
    Review,
    ReviewStatus,
    Revision,
)


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects a user may see: their memberships, or every project for a superuser."""
    projects = Project.objects.all()
    if not user.is_superuser:
        projects = projects.filter(memberships__user=user)
    return projects.order_by("name")


def project_create_allowed(*, user: AbstractBaseUser) -> bool:
    """Whether the user may create a project (and lead it): staff only, unless FINELINE_PROJECT_CREATORS is `any`."""
    return user.is_authenticated and (settings.FINELINE_PROJECT_CREATORS == "any" or user.is_staff or user.is_superuser)


def project_lead(*, project: Project) -> AbstractBaseUser | None:
    """The project's first lead: who shell commands act as when no user is named."""
    lead = project.memberships.filter(role=Membership.Role.LEAD).select_related("user").order_by("pk").first()
    return lead.user if lead else None


def project_get(*, user: AbstractBaseUser, slug: str, lead: bool = False) -> Project:
    """The project if the user is a member (404 otherwise, so its existence does not leak); `lead` requires a lead."""
    if user.is_superuser:
        project, role = Project.objects.filter(slug=slug).first(), Membership.Role.LEAD
    else:
        membership = Membership.objects.filter(project__slug=slug, user=user).select_related("project").first()
        project, role = (membership.project, membership.role) if membership else (None, None)
    if project is None:
        raise Http404("No such project.")
    if lead and role != Membership.Role.LEAD:
        raise PermissionDenied("Only a project lead can do this.")
    project.user_role, project.user_role_of = role, user.pk  # the role of this user (read by services.is_lead)
    return project


def example_counts(*, project: Project) -> list[dict[str, Any]]:
    """The project's examples counted by status, label, format state and edge-case tag, from the counters the
    database maintains (ExampleCounter): a handful of rows whatever the size of the project."""
    rows = (
        ExampleCounter.objects.filter(project=project)
        .values("status", "label", "format_state", "edge_case")
        .annotate(count=Sum("n"))
        .order_by()
    )
    return [row for row in rows if row["count"]]


def _count_by(rows: list[dict[str, Any]], key: str, **match: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if all(row[field] == value for field, value in match.items()):
            counts[row[key]] += row["count"]
    return dict(counts)


def project_status_counts(*, project: Project) -> dict[str, int]:
    return _count_by(example_counts(project=project), "status")


def project_label_counts(*, project: Project) -> dict[str, int]:
    return _count_by(example_counts(project=project), "label")


def example_list(
    *,
    project: Project,
    status: str = "",
    label: str = "",
    tag: str = "",
    q: str = "",
    reviewer: str = "",
    format: str = "",
    cluster: str = "",
    too_long: bool = False,
) -> QuerySet[Example]:
    """A project's examples filtered by status, label, tag, reviewer, answer format (ok / bad / unchecked),
    duplicate cluster and free text (words in any message)."""
    examples = Example.objects.filter(project=project)
    if format in ("ok", "bad"):
        examples = examples.filter(format_ok=format == "ok")
    elif format == "unchecked":
        examples = examples.filter(format_ok__isnull=True)
    if cluster.isdigit():
        examples = examples.filter(cluster_id=int(cluster))
    if too_long:
        over = _over_length_ids(project)
        if over is not None:  # the examples the last quality scan counted over the limit: the dashboard's number
            examples = examples.filter(pk__in=over)
        else:  # no scan kept the lengths (or more are over than it kept): 4 bytes a token on the stored JSON
            limit = project.max_seq_length * formats.BYTES_PER_TOKEN
            examples = examples.alias(size=Length(Cast("messages", TextField()))).filter(size__gt=limit)
    if reviewer:
        examples = examples.filter(
            Exists(Review.objects.filter(example=OuterRef("pk"), reviewer__username=reviewer))
        )  # once per example, whatever the number of review rounds
    if status:
        examples = examples.filter(status=status)
    if label:
        examples = examples.filter(label=label)
    if tag:
        if connection.vendor == "postgresql":
            examples = examples.filter(tags__contains=[tag])  # served by a GIN index
        else:
            examples = examples.filter(tags__icontains=f'"{tag}"')
    words = q.split()
    if words and connection.vendor == "postgresql":
        # Indexed rows through the GIN index; rows an import just wrote (not indexed yet) by a scan of those alone.
        patterns = [f"%{_like_escape(word)}%" for word in words]
        unindexed = " AND ".join(["curation_example.messages::text ILIKE %s"] * len(patterns))
        examples = examples.filter(
            RawSQL(
                "(curation_example.search_vector @@ plainto_tsquery('simple', %s)"
                f" OR (curation_example.search_vector IS NULL AND {unindexed}))",
                [" ".join(words), *patterns],
                output_field=BooleanField(),
            )
        )
    elif words:
        for word in words:
            examples = examples.filter(messages__icontains=word)
    return examples.order_by("id")


def example_count_upto(*, examples: QuerySet[Example], limit: int) -> int:
    """How many examples match, counted no further than limit + 1 (more than `limit`): cheap at any size."""
    return examples.order_by()[: limit + 1].count()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def example_get(*, project: Project, example_id: int) -> Example:
    example = Example.objects.filter(project=project, pk=example_id).first()
    if example is None:
        raise Http404("No such example.")
    example.project = project
    return example


class ExportError(Exception):
    """An export that cannot go on: the lines already sent are not the whole export."""


def example_export_lines(*, examples: QuerySet[Example], messages_only: bool = False) -> Iterator[bytes]:
    """Stream examples as JSONL lines (OpenAI chat format), a server-side cursor at a time."""
    rows = examples.values_list("messages", "label", "tags", "metadata").iterator(chunk_size=2000)
    lines = (formats.example_to_json_line(*row, messages_only=messages_only) for row in rows)
    return _export_guarded(lines)


def _export_guarded(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The lines, or an ExportError naming how far the export got: never a shorter file that looks whole."""
    count = 0
    try:
        for line in lines:
            yield line
            count += 1
    except (TypeError, ValueError, RecursionError) as error:
        raise ExportError(f"the export stopped after {count} example(s): the next one cannot be written ({error}).")


def import_job_list(*, project: Project) -> QuerySet[ImportJob]:
    return ImportJob.objects.filter(project=project).select_related("created_by").order_by("-created_at")


# --- Review ---------------------------------------------------------------------------------------------------


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
    progress = {}
    for project_id, by_status in counts.items():
        total = sum(by_status.values())
        progress[project_id] = {"total": total, "reviewed": total - by_status.get(ReviewStatus.PENDING, 0), **by_status}
    return progress


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


@dataclass
class RevisionView:
    """A revision and what changed since the one before it."""

    revision: Revision
    changes: list[str]
    diffs: list[tuple[str, list[tuple[str, str]]]]


def example_history(*, example: Example) -> list[RevisionView]:
    """Every saved state of the example, newest first, each with its diff against the previous state."""
    revisions = list(Revision.objects.filter(example=example).select_related("author").order_by("version"))
    views = []
    previous = None
    for revision in revisions:
        changes, diffs = [], []
        if previous is not None:
            for field in ("status", "label"):
                before, after = getattr(previous, field), getattr(revision, field)
                if before != after:
                    changes.append(f"{field}: {before or '(none)'} → {after or '(none)'}")
            if previous.tags != revision.tags:
                changes.append(f"tags: {', '.join(previous.tags) or '(none)'} → {', '.join(revision.tags) or '(none)'}")
            diffs = _message_diffs(previous.messages, revision.messages)
        views.append(RevisionView(revision, changes, diffs))
        previous = revision
    return views[::-1]


def _message_diffs(before: list[dict], after: list[dict]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per changed turn: its role and the lines of a diff, each marked '+', '-' or ' '."""
    diffs = []
    for index in range(max(len(before), len(after))):
        old = before[index] if index < len(before) else {"role": "", "content": ""}
        new = after[index] if index < len(after) else {"role": "", "content": ""}
        if old == new:
            continue
        lines = [
            (line[0], line[2:])
            for line in difflib.ndiff(old["content"].splitlines(), new["content"].splitlines())
            if line[0] in "+- "
        ]
        diffs.append((new["role"] or old["role"], lines))
    return diffs


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


# --- Data quality, readiness, dataset versions -----------------------------------------------------------------


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


def version_export_lines(*, version: DatasetVersion, split: str, messages_only: bool = False) -> Iterator[bytes]:
    items = version.items.filter(split=split).order_by("id").values_list("messages", "label")
    lines = (
        formats.example_to_json_line(m, label, [], {}, messages_only=messages_only) for m, label in items.iterator(2000)
    )
    return _export_guarded(lines)
