"""Browser pages of the curation app."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors
from .models import ReviewStatus


@login_required
def project_list(request):
    projects = list(selectors.project_list(user=request.user))
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    for project in projects:
        project.role = "admin" if request.user.is_superuser else roles.get(project.pk)
        counts = selectors.project_status_counts(project=project)
        project.total = sum(counts.values())
        project.reviewed = project.total - counts.get(ReviewStatus.PENDING, 0)
    return render(request, "curation/project_list.html", {"projects": projects})


@login_required
def project_detail(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug)
    status_counts = selectors.project_status_counts(project=project)
    label_counts = selectors.project_label_counts(project=project)
    context = {
        "project": project,
        "total": sum(status_counts.values()),
        "statuses": [(choice.label, status_counts.get(choice.value, 0)) for choice in ReviewStatus],
        "labels": [(label or "(none)", count) for label, count in sorted(label_counts.items())],
        "imports": selectors.import_job_list(project=project)[:10],
    }
    return render(request, "curation/project_detail.html", context)
