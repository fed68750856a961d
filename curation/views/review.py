"""Browser pages of the curation app: the projects, the review queue, the example list, history, disagreements.

One URL serves the full page or, for htmx, the fragment that changes (templates/curation/htmx/).
"""

import hashlib
import json

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.params import form_int

from . import bulk, formats, selectors, services, text
from .models import Membership, Review, ReviewStatus, Revision

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


PREVIEW_TEXT_CHARS = 300


@login_required
@require_POST
def import_preview(request, slug: str):
    """The upload form's preview: the first rows of the chosen file (the browser sends its first megabyte; a Parquet
    file whole) as they would import, with a mapping suggested from their keys when they are in another shape."""
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    template = "curation/htmx/import_preview.html"
    upload = request.FILES.get("file")
    mapping_text = request.POST.get("mapping", "").strip()
    context = {"project": project, "name": upload.name if upload else "", "mapping_text": mapping_text}
    if upload is None:
        return render(request, template, {**context, "problem": "Choose a file to preview."}, status=400)
    mapping = None
    if mapping_text:
        try:
            mapping = formats.mapping_parse(mapping_text)
        except formats.MappingError as error:
            return render(request, template, {**context, "problem": str(error)}, status=400)
    stream = upload.open("rb")
    head = stream.read(64)
    stream.seek(0)
    kind = formats.file_kind(name=upload.name, content_type=upload.content_type or "", head=head)
    limits = services.import_limits()
    try:
        rows = formats.read_rows(
            kind,
            upload.file if kind == "parquet" else stream,
            limits=limits,
            max_body_bytes=settings.FINELINE_IMPORT_MAX_BODY_BYTES,
        )
        preview = formats.import_preview(rows, kind=kind, labels=project.labels, limits=limits, mapping=mapping)
    except formats.BodyTooLarge as error:
        return render(request, template, {**context, "problem": f"The file is too large: {error}"}, status=400)
    if not mapping_text and preview["needs_mapping"] and preview["mapping"]:
        context["mapping_text"] = json.dumps(preview["mapping"], ensure_ascii=False)
    context.update(preview=preview, kind=kind, rows=[_preview_row(row) for row in preview["rows"]])
    return render(request, template, context)


def _preview_row(row: dict) -> dict:
    if row["example"] is None:
        return row
    example = row["example"]
    turns = [(m["role"], _shorten(m["content"])) for m in example["messages"]]
    metadata = _shorten(json.dumps(example["metadata"], ensure_ascii=False)) if example["metadata"] else ""
    return {**row, "turns": turns, "label": example["label"], "metadata": metadata}


def _shorten(text: str) -> str:
    return text if len(text) <= PREVIEW_TEXT_CHARS else text[: PREVIEW_TEXT_CHARS - 1] + "…"


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
    except (ValueError, services.ServiceError):
        flash.error(request, "Reviews required must be a whole number from 1 to 5.")
    return redirect("curation:project_detail", slug=slug)


@login_required
@require_POST
def quality_scan_start(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    try:
        services.quality_scan_start(project=project, threshold=float(request.POST.get("threshold") or 0.85))
        flash.success(
            request, "Quality scan queued: duplicates, format and token lengths are checked in the background."
        )
    except (ValueError, services.ServiceError):
        flash.error(request, "The near-duplicate threshold must be a number between 0.5 and 1.")
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
    except (ValueError, services.ServiceError):
        flash.error(request, "Choose the example to keep.")
    return redirect("curation:project_detail", slug=slug)


# --- Review ----------------------------------------------------------------------------------------------------


def _review_context(
    request, project, example, *, held: bool, mine: dict | None = None, error: str = "", fresh: bool = False, **extra
):
    """What the review panel shows: the example (or the user's unsaved version of it), lock, draft and format.

    fresh: the example was just claimed from the queue, so this reviewer has not reviewed it yet.
    """
    draft = selectors.draft_get(example=example, user=request.user) if held and mine is None else None
    source = mine or (
        {"messages": draft.messages, "label": draft.label, "tags": draft.tags, "comment": draft.comment}
        if draft
        else {"messages": example.messages, "label": example.label, "tags": example.tags, "comment": ""}
    )
    answer = next((m["content"] for m in reversed(source["messages"]) if m["role"] == "assistant"), "")
    return {
        "project": project,
        "example": example,
        "held": held,
        "draft": draft,
        "form": source,
        "turns": list(enumerate(source["messages"])),
        "other_tags": ", ".join(tag for tag in source["tags"] if tag != "edge_case"),
        "violations": formats.answer_violations(project.output_format, answer),
        "progress": selectors.review_progress(project=project),
        "previous": selectors.example_previous_reviewed(
            project=project, reviewer=request.user, before=example, reviewed_before=not fresh
        ),
        "my_review": None
        if fresh
        else Review.objects.filter(example=example, reviewer=request.user, round=example.review_round).first(),
        # The import writes no revision; the first change stores the original and itself, then one per change.
        "revision_count": 0 if example.version == 1 else example.version,
        "queue_label": request.GET.get("label") or request.POST.get("queue_label", ""),
        "error": error,
        **extra,
    }


def _in_queue(url: str, label: str) -> str:
    """A review URL that keeps the expert in their label's queue (a reload, "previous", the next example)."""
    return f"{url}?{urlencode({'label': label})}" if label else url


def _panel(request, context, *, status: int = 200, push: bool = True):
    template = "curation/htmx/review_panel.html" if request.htmx else "curation/review.html"
    response = render(request, template, context, status=status)
    if request.htmx and push and context.get("example"):
        response["HX-Push-Url"] = _in_queue(
            reverse("curation:review_example", kwargs={"slug": context["project"].slug, "pk": context["example"].pk}),
            context.get("queue_label", ""),
        )
    return response


def _queue_empty(request, project, label: str):
    """Nothing left for this expert; in a label's queue the page says so and stays in it (never another label)."""
    template = "curation/htmx/queue_empty.html" if request.htmx else "curation/review_empty.html"
    context = {"project": project, "progress": selectors.review_progress(project=project), "queue_label": label}
    response = render(request, template, context)
    if request.htmx:
        response["HX-Push-Url"] = _in_queue(reverse("curation:review_next", kwargs={"slug": project.slug}), label)
    return response


@login_required
@require_GET
def review_next(request, slug: str):
    """Claim the next example for this expert and show it (the queue's entry point and its "next" key)."""
    project = selectors.project_get(user=request.user, slug=slug)
    label = request.GET.get("label", "")
    example = services.review_queue_next(
        project=project, reviewer=request.user, after_id=form_int(request.GET.get("after")), label=label
    )
    if example is None:
        return _queue_empty(request, project, label)
    return _panel(request, _review_context(request, project, example, held=True, fresh=True))


@login_required
@require_GET
def review_example(request, slug: str, pk: int):
    """One example in the review panel; held for this expert unless a colleague holds it (then read-only)."""
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    held = services.review_lock_claim(example=example, reviewer=request.user)
    return _panel(request, _review_context(request, project, example, held=held), push=False)


def _submitted(request, example) -> dict:
    """The expert's version of the example, as the review form sent it."""
    messages = []
    index = 0
    while f"role_{index}" in request.POST:
        # A form the browser sends itself (before htmx has wired it up) writes a textarea's line breaks as CRLF.
        content = request.POST.get(f"content_{index}", "").replace("\r\n", "\n")
        messages.append({"role": request.POST[f"role_{index}"], "content": content})
        index += 1
    tags = [tag.strip() for tag in request.POST.get("tags", "").split(",") if tag.strip()]
    if request.POST.get("edge_case"):
        tags.insert(0, "edge_case")
    return {
        "messages": messages or example.messages,
        "label": request.POST.get("label", ""),
        "tags": list(dict.fromkeys(tags)),
        "comment": request.POST.get("comment", ""),
    }


def _answer_digest(answer: str) -> str:
    return hashlib.sha256(answer.encode()).hexdigest()[:16]


def _format_unconfirmed(request, project, example, mine) -> HttpResponse | None:
    """An approval of an answer that does not fit the output format: a 422 with the warning, the violations and what
    the format expects, and the form now carrying the confirmation of this very answer (a second "a" approves it;
    an edit to the answer asks again). None when there is nothing to confirm."""
    answer = formats.last_answer(mine["messages"])
    violations = formats.answer_violations(project.output_format, answer)
    confirmation = _answer_digest(answer)
    held_by_other = example.locked_by_id not in (None, request.user.pk) and (
        example.locked_until is not None and example.locked_until > timezone.now()
    )
    if not violations or held_by_other or request.POST.get("format_confirmed") == confirmation:
        return None
    error = (
        "This answer does not fit the output format (see below). Press a again (or Approve) to approve it as it is, "
        "or fix it first."
    )
    context = _review_context(request, project, example, held=True, mine=mine, error=error, format_confirm=confirmation)
    return _panel(request, context, status=422, push=False)


@login_required
@require_POST
def review_submit(request, slug: str, pk: int):
    """Approve, reject or ask for changes, with the edits; then the next example slides in."""
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    mine = _submitted(request, example)
    decision = request.POST.get("decision", "")
    queue_label = request.POST.get("queue_label", "")
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        return HttpResponse("The form lost its version; reload the page.", status=400)
    if decision == Review.Decision.APPROVED and (warning := _format_unconfirmed(request, project, example, mine)):
        return warning
    try:
        next_example = services.example_review_then_next(
            example=example,
            reviewer=request.user,
            version=version,
            decision=decision,
            label=mine["label"],
            messages=mine["messages"],
            tags=mine["tags"],
            comment=mine["comment"],
            queue_label=queue_label,
        )
    except services.VersionConflict as conflict:
        return _conflict(request, project, conflict.current, mine)
    except services.ExampleLocked as locked:
        context = _review_context(
            request,
            project,
            locked.example,
            held=False,
            mine=mine,
            error=f"{locked.example.locked_by} is reviewing this example right now.",
        )
        return _panel(request, context, status=409, push=False)
    except services.ServiceError as error:
        context = _review_context(request, project, example, held=True, mine=mine, error=error.message)
        return _panel(request, context, status=422, push=False)
    if next_example is None:
        if request.htmx:
            return _queue_empty(request, project, queue_label)
        return redirect(_in_queue(reverse("curation:review_next", kwargs={"slug": slug}), queue_label))
    if not request.htmx:
        return redirect(
            _in_queue(reverse("curation:review_example", kwargs={"slug": slug, "pk": next_example.pk}), queue_label)
        )
    return _panel(request, _review_context(request, project, next_example, held=True, fresh=True))


def _conflict(request, project, current, mine):
    """409: both versions side by side; keep mine, take theirs, or merge. Nothing has been overwritten."""
    latest = Revision.objects.filter(example=current).select_related("author").order_by("-version").first()
    context = _review_context(request, project, current, held=True, mine=mine)
    context.update(
        {
            "conflict": True,
            "theirs": current,
            "theirs_turns": list(enumerate(current.messages)),
            "changed_by": latest.author if latest else None,
            "changed_at": latest.created_at if latest else current.updated_at,
            "decision": request.POST.get("decision", "approved"),
        }
    )
    return _panel(request, context, status=409, push=False)


@login_required
@require_POST
def review_draft(request, slug: str, pk: int):
    """Autosave of an edit in progress (and a heartbeat that keeps the lock)."""
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    if request.POST.get("discard"):
        services.draft_discard(example=example, user=request.user)
        return _panel(request, _review_context(request, project, example, held=True), push=False)
    mine = _submitted(request, example)
    try:
        base_version = int(request.POST.get("version", ""))
        draft = services.draft_save(
            example=example,
            user=request.user,
            base_version=base_version,
            lock_token=request.POST.get("lock_token", ""),
            **mine,
        )
    except (ValueError, services.ServiceError):
        return HttpResponse('<span class="error">Draft not saved</span>', status=422)
    example.refresh_from_db(fields=["locked_by", "locked_until"])
    return render(request, "curation/htmx/draft_status.html", {"draft": draft, "example": example})


@login_required
@require_POST
def review_check(request, slug: str, pk: int):
    """The answer checked against the project's output format as the expert types."""
    project = selectors.project_get(user=request.user, slug=slug)
    selectors.example_get(project=project, example_id=pk)
    answer = request.POST.get(request.POST.get("field", ""), "")
    limit = settings.FINELINE_LIVE_CHECK_MAX_CHARS
    if len(answer) > limit:
        # Still a 200: htmx swaps the fragment in, and the reviewer reads why the check paused rather than a stale one.
        context = {"project": project, "too_long": {"length": len(answer), "limit": limit}}
        return render(request, "curation/htmx/format_check.html", context)
    violations = formats.answer_violations(project.output_format, answer)
    return render(request, "curation/htmx/format_check.html", {"project": project, "violations": violations})


@login_required
@require_POST
def review_render(request, slug: str, pk: int):
    """A turn as the expert edited it, rendered from Markdown (the rendered view, m); raw HTML in it stays text."""
    project = selectors.project_get(user=request.user, slug=slug)
    selectors.example_get(project=project, example_id=pk)
    return HttpResponse(text.markdown_html(request.POST.get("text", "")))


@login_required
@require_POST
def review_release(request, slug: str, pk: int):
    """A page being left (a closing tab, a reload, "previous") gives its example back at once instead of holding it
    until the lock expires: only the claim that page made, named by its token; a newer claim stays."""
    project = selectors.project_get(user=request.user, slug=slug)
    example = selectors.example_get(project=project, example_id=pk)
    services.review_lock_release(example=example, reviewer=request.user, token=request.POST.get("token", ""))
    return HttpResponse(status=204)


# --- Browsing, history, disagreements ---------------------------------------------------------------------------


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
    page = list(examples[: PAGE_SIZE + 1])
    context = {
        "project": project,
        "filters": filters,
        "examples": page[:PAGE_SIZE],
        "more": page[PAGE_SIZE].pk - 1 if len(page) > PAGE_SIZE else None,
        "statuses": ReviewStatus.choices,
        "formats": [("ok", "fits the format"), ("bad", "does not fit"), ("unchecked", "not checked yet")],
        "too_long": too_long,
        "reviewers": project.memberships.select_related("user").order_by("user__username"),
        "query": request.GET.urlencode(),
        "is_lead": is_lead,
        # What "all matching this filter" would act on; counted only for leads, and only so far.
        "matching": selectors.example_count_upto(examples=examples, limit=BULK_COUNT_LIMIT) if is_lead else None,
        "matching_limit": BULK_COUNT_LIMIT,
        "bulk_actions": BULK_ACTIONS,
    }
    if request.htmx:
        template = "curation/htmx/example_rows.html" if after else "curation/htmx/example_table.html"
        return render(request, template, context)
    return render(request, "curation/example_list.html", context)


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
        flash.error(request, error.message[:1].upper() + error.message[1:])
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


@login_required
@require_GET
def disagreements(request, slug: str):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    context = {"project": project, "examples": selectors.disagreement_list(project=project)[:50]}
    return render(request, "curation/disagreements.html", context)


@login_required
@require_POST
def adjudicate(request, slug: str, pk: int):
    project = selectors.project_get(user=request.user, slug=slug, lead=True)
    example = selectors.example_get(project=project, example_id=pk)
    version = form_int(request.POST.get("version"))
    if version is None:
        return HttpResponse("`version` must be the example's current version number.", status=400)
    try:
        services.example_adjudicate(
            example=example,
            lead=request.user,
            version=version,
            decision=request.POST.get("decision", ""),
            label=request.POST.get("label", ""),
        )
        flash.success(request, f"Example #{pk} settled.")
    except services.VersionConflict:
        flash.error(request, f"Example #{pk} changed meanwhile; look again before settling it.")
    except services.ServiceError as error:
        flash.error(request, error.message)
    return redirect("curation:disagreements", slug=slug)
