"""The example list with its filters and a lead's bulk actions, and an example's history with its restores."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.params import form_int

from .. import bulk, selectors, services
from ..models import Membership, ReviewStatus, Revision

PAGE_SIZE = 50
BULK_ACTIONS = [
    ("approve", "Approve"),
    ("reject", "Reject"),
    ("set_label", "Set label"),
    ("add_tag", "Add tag"),
    ("send_to_review", "Send to review"),
]
# "All N matching this filter" is counted up to here ("more than 100,000" beyond): the count stays cheap at any size.
BULK_COUNT_LIMIT = 100_000


def _list_filters(params) -> tuple[dict[str, str], bool]:
    """The example list's filters from a query string: (the text filters, over the max length or not)."""
    keys = ("status", "label", "tag", "reviewer", "q", "format", "cluster")
    filters = {key: params.get(key, "").strip() for key in keys}
    if filters["status"] not in ("", *ReviewStatus.values):
        filters["status"] = ""
    return filters, params.get("too_long") == "1"


@login_required
@require_GET
def example_list(request, slug: str):
    """All examples, filtered by status, label, tag, reviewer and words; the filters live in the URL. Leads pick
    examples (or all that match) for a bulk action."""
    project = selectors.project_get(user=request.user, slug=slug)
    filters, too_long = _list_filters(request.GET)
    examples = selectors.example_list(project=project, too_long=too_long, **filters)
    is_lead = project.user_role == Membership.Role.LEAD
    after = form_int(request.GET.get("after"))
    if after is not None:
        examples = examples.filter(id__gt=after)
    page = selectors.example_rows(examples=examples, limit=PAGE_SIZE + 1)
    context = {
        "project": project,
        "filters": filters,
        "examples": page[:PAGE_SIZE],
        "more": page[PAGE_SIZE]["id"] - 1 if len(page) > PAGE_SIZE else None,
        # Each row's link is this with its id in place of 0 (one reverse() for the page, not one per row).
        "review_url": reverse("curation:review_example", kwargs={"slug": slug, "pk": 0}),
        "statuses": ReviewStatus.choices,
        "formats": [("ok", "fits the format"), ("bad", "does not fit"), ("unchecked", "not checked yet")],
        "too_long": too_long,
        "reviewers": project.memberships.select_related("user").order_by("user__username"),
        "query": request.GET.urlencode(),
        "is_lead": is_lead,
        # What "all matching this filter" would act on, for leads: from the counters when they count by these
        # filters; otherwise None, and the page asks example_count for it once shown (the rows do not wait for it).
        "matching": selectors.example_count_counted(project=project, filters=filters, too_long=too_long)
        if is_lead
        else None,
        "matching_limit": BULK_COUNT_LIMIT,
        "bulk_actions": BULK_ACTIONS,
    }
    if request.htmx:
        template = "curation/htmx/example_rows.html" if after else "curation/htmx/example_table.html"
        return render(request, template, context)
    return render(request, "curation/example_list.html", context)


@login_required
@require_GET
def example_count(request, slug: str):
    """How many examples match the list's filters (up to BULK_COUNT_LIMIT, "more than" beyond): the bulk bar's
    figure, asked for by the page when the counters cannot give it."""
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    filters, too_long = _list_filters(request.GET)
    examples = selectors.example_list(project=project, too_long=too_long, **filters)
    matching = selectors.example_count_upto(examples=examples, limit=BULK_COUNT_LIMIT)
    context = {"matching": matching, "matching_limit": BULK_COUNT_LIMIT}
    return render(request, "curation/htmx/example_matching.html", context)


@login_required
@require_POST
def example_bulk(request, slug: str):
    """A lead's bulk action from the example list: the checked examples, or all that match the list's filters."""
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    filters, too_long = _list_filters(QueryDict(request.POST.get("query", "")))
    back = {key: value for key, value in filters.items() if value} | ({"too_long": "1"} if too_long else {})
    target = reverse("curation:example_list", kwargs={"slug": slug}) + (f"?{urlencode(back)}" if back else "")
    if request.POST.get("scope") == "filter":
        pick = {"filters": {**filters, "too_long": too_long}}
    else:
        ids = [pk for pk in map(form_int, request.POST.getlist("ids")) if pk is not None]
        if not ids:
            flash.error(request, "Check the examples to act on, or choose all that match the filter.")
            return redirect(target)
        pick = {"ids": ids}
    action = request.POST.get("action", "")
    try:
        result = bulk.examples_bulk(
            project=project,
            user=request.user,
            action=action,
            label=request.POST.get("label", ""),
            tag=request.POST.get("tag", ""),
            **pick,
        )
    except services.ServiceError as error:
        flash.error(request, error.message)
        return redirect(target)
    name = dict(BULK_ACTIONS)[action]
    skipped = []
    if result["skipped_locked"]:
        skipped.append(f"{result['skipped_locked']:,} skipped: an expert is reviewing them right now")
    if result["skipped_no_label"]:
        skipped.append(f"{result['skipped_no_label']:,} skipped: no label (choose one to approve them)")
    flash.success(
        request,
        f"{name}: {result['matched']:,} matched, {result['changed']:,} changed, {result['unchanged']:,} unchanged"
        + "".join(f"; {line}" for line in skipped)
        + ".",
    )
    return redirect(target)


@login_required
@require_GET
def example_history(request, slug: str, pk: int):
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    context = {"project": project, "example": example, "history": selectors.example_history(example=example)}
    return render(request, "curation/example_history.html", context)


@login_required
@require_POST
def example_restore(request, slug: str, pk: int, version: int):
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    revision = Revision.objects.filter(example=example, version=version).first()
    if revision is None:
        return HttpResponse("No such version.", status=404)
    current_version = form_int(request.POST.get("version"))
    if current_version is None:
        return HttpResponse("`version` must be the example's current version number.", status=400)
    try:
        services.example_restore(example=example, user=request.user, revision=revision, version=current_version)
        flash.success(request, f"Restored version {version} as a new version.")
    except services.VersionConflict:
        flash.error(request, "The example changed while you were reading its history; nothing was restored.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:example_history", slug=slug, pk=pk)
