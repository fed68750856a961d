"""A dataset version's page of changes: what changed against another version of the project (htmx swaps the diff
when another version is chosen)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from core.params import form_int

from .. import selectors
from ..models import DatasetVersion

VERSIONS_SHOWN = 500  # in the "compare with" list


@login_required
@require_GET
def dataset_version_diff(request, slug: str, pk: int):
    """The version against `?against=<id>` (by default the version frozen before it): counts, labels and splits
    before and after, and a page of each kind of change (or of `?kind=` alone, from `?offset=`)."""
    project = selectors.project_get(user=request.user, slug=slug)
    versions = DatasetVersion.objects.filter(project=project)
    version = get_object_or_404(versions, pk=pk)
    kind = request.GET.get("kind", "")
    kind = kind if kind in selectors.DIFF_KINDS else ""
    offset = form_int(request.GET.get("offset")) or 0
    status, error = 200, ""
    if request.GET.get("against"):
        against_id = form_int(request.GET["against"])
        against = versions.filter(pk=against_id).first() if against_id is not None else None
        if against is None:
            status, error = 400, "Choose another version of this project to compare with."
    else:
        against = selectors.dataset_version_previous(version=version)
    diff = None
    if against is not None:
        diff = selectors.dataset_version_diff(version=version, against=against, kind=kind, offset=offset)
    context = {
        "project": project,
        "version": version,
        "against": against,
        "versions": versions.only("pk", "number", "created_at").order_by("-number")[:VERSIONS_SHOWN],
        "diff": diff,
        "kind": kind,
        # Each list the page shows: (kind, its entries, how many in all, the offset of the next page or None).
        "sections": [
            (name, entries, diff["totals"][name], _next(offset, len(entries), diff["totals"][name]))
            for name, entries in diff["lists"].items()
        ]
        if diff
        else [],
        "error": error,
        "page_size": selectors.DIFF_PAGE,
    }
    template = "curation/htmx/version_diff.html" if request.htmx else "curation/version_diff.html"
    return render(request, template, context, status=status)


def _next(offset: int, shown: int, total: int) -> int | None:
    return offset + shown if shown and offset + shown < total else None
