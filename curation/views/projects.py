"""Project pages: the list, the dashboard, and a lead's settings, quality scans, frozen versions and duplicates."""

import json

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .. import selectors, services
from ..models import Membership, ReviewStatus


@login_required
@require_GET
def project_list(request):
    projects = list(selectors.project_list(user=request.user))
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    progress = selectors.review_progress_many(projects=projects)
    for project in projects:
        project.role = "admin" if request.user.is_superuser else roles.get(project.pk)
        project.progress = progress[project.pk]
    context = {"projects": projects, "can_create": selectors.project_create_allowed(user=request.user)}
    return render(request, "curation/project_list.html", context)


@login_required
@require_GET
def project_detail(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug)
    progress = selectors.review_progress(project=project)
    context = {
        "project": project,
        "is_lead": project.user_role == Membership.Role.LEAD,
        "progress": progress,
        "statuses": [(choice, progress.get(choice.value, 0)) for choice in ReviewStatus],
        "labels": sorted(selectors.project_label_counts(project=project).items()),
        "imports": selectors.import_job_list(project=project)[:10],
        "experts": selectors.expert_stats(project=project),
        "readiness": selectors.readiness(project=project),
        "dashboard": (dashboard := selectors.dashboard_stats(project=project)),
        "chart_data": {
            "labels": dashboard["labels"],
            "approved": list(dashboard["approved_by_label"].values()),
            "all": list(dashboard["all_by_label"].values()),
            "target": max(dashboard["approved_by_label"].values(), default=0),
            "tokens": dashboard["tokens"],
        },
        "duplicates": _duplicates(project),
        "versions": project.dataset_versions.select_related("created_by")[:10],
        "agreement": selectors.agreement(project=project) if project.reviews_required > 1 else None,
        "disputed": selectors.disagreement_list(project=project).count(),
        "generation_max": settings.FINELINE_GENERATION_MAX_COUNT,
    }
    context["chart_tables"] = _chart_tables(dashboard)
    return render(request, "curation/project_detail.html", context)


def _chart_tables(dashboard: dict) -> dict:
    """The charts' numbers as rows, for the text tables beside them (a screen reader cannot read a canvas)."""
    everything = dashboard["all_by_label"]
    labels = [(label, count, everything.get(label, 0)) for label, count in dashboard["approved_by_label"].items()]
    tokens = dashboard["tokens"]
    if not tokens:
        return {"labels": labels, "roles": [], "tokens": []}
    buckets, roles = tokens["buckets"], list(tokens["histogram"])
    ranges = [f"{low}-{buckets[i + 1] - 1}" if i + 1 < len(buckets) else f"{low}+" for i, low in enumerate(buckets)]
    rows = [(span, [tokens["histogram"][role][i] for role in roles]) for i, span in enumerate(ranges)]
    return {"labels": labels, "roles": roles, "tokens": rows}


def _duplicates(project) -> list[dict]:
    """The largest duplicate clusters; `same` when their members are word for word the same (answer and label
    included): only then is one chosen in advance for "keep the chosen one"."""
    clusters = selectors.duplicate_cluster_list(project=project, limit=20)
    for cluster in clusters:
        versions = {(json.dumps(e.messages, sort_keys=True), e.label) for e in cluster["examples"]}
        cluster["same"] = len(versions) == 1
    return clusters


@login_required
@require_POST
def project_settings(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    if "tokenizer" in request.POST:
        try:
            services.project_update(project=project, tokenizer=request.POST["tokenizer"])
            services.quality_scan_start(project=project)
            flash.success(request, "Saved: a quality scan recounts the token lengths.")
        except services.ServiceError as error:
            flash.error(request, error.message)
        return redirect("curation:project_detail", slug=slug)
    try:
        services.project_update(project=project, reviews_required=int(request.POST.get("reviews_required", "")))
        flash.success(request, f"Saved: each example now needs {project.reviews_required} review(s).")
    except ValueError:
        flash.error(request, "Reviews required must be a whole number from 1 to 5.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:project_detail", slug=slug)


@login_required
@require_POST
def quality_scan_start(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    threshold = request.POST.get("threshold", "").strip()
    try:
        # No threshold: the quality rules' own (quality.THRESHOLDS), as the service chooses it.
        services.quality_scan_start(project=project, threshold=float(threshold) if threshold else None)
        flash.success(
            request, "Quality scan queued: duplicates, format and token lengths are checked in the background."
        )
    except ValueError:
        flash.error(request, "The near-duplicate threshold must be a number between 0.5 and 1.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:project_detail", slug=slug)


@login_required
@require_POST
def dataset_version_freeze(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    try:
        cap = request.POST.get("max_per_label", "").strip()
        version = services.dataset_version_freeze(
            project=project,
            user=request.user,
            train=float(request.POST.get("train", "0.8")),
            val=float(request.POST.get("val", "0.1")),
            test=float(request.POST.get("test", "0.1")),
            seed=int(request.POST.get("seed", "0") or 0),
            max_per_label=int(cap) if cap else None,
        )
        flash.success(
            request, f"Version {version.number} frozen: {sum(c['total'] for c in version.counts.values())} examples."
        )
    except ValueError:
        flash.error(request, "Shares must be numbers and the seed and cap whole numbers.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:project_detail", slug=slug)


@login_required
@require_POST
def duplicates_resolve(request, slug: str, cluster_id: int):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    try:
        rejected = services.duplicates_resolve(
            project=project, cluster_id=cluster_id, keep_id=int(request.POST.get("keep", "0")), user=request.user
        )
        flash.success(request, f"Kept one example; {rejected} duplicate(s) rejected.")
    except ValueError:
        flash.error(request, "Choose the example to keep.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:project_detail", slug=slug)
