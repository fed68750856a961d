"""The review panel (one URL for the page or its htmx fragment) and the lead's page of disagreements to settle."""

import hashlib
from functools import cache

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.params import form_int

from .. import formats, selectors, services, text
from ..models import Review, Revision


def _review_context(
    request, project, example, *, held: bool, mine: dict | None = None, error: str = "", fresh: bool = False, **extra
):
    """What the review panel shows: the example (or the user's unsaved version of it), lock, draft and format.

    fresh: the example was just claimed from the queue, so this reviewer has not reviewed it yet.
    """
    draft = None
    if held and mine is None and getattr(example, "draft_id", True) is not None:  # the claim says when there is none
        draft = selectors.draft_get(example=example, user=request.user)
    source = mine or (
        {"messages": draft.messages, "label": draft.label, "tags": draft.tags, "comment": draft.comment}
        if draft
        else {"messages": example.messages, "label": example.label, "tags": example.tags, "comment": ""}
    )
    answer = next((m["content"] for m in reversed(source["messages"]) if m["role"] == "assistant"), "")
    previous_id = _previous_id(request, project, example, fresh=fresh, previous=extra.pop("previous", None))
    return {
        "project": project,
        "urls": example_urls(project.slug, example.pk),
        "previous_url": example_urls(project.slug, previous_id)["review_example"] if previous_id else "",
        "next_url": reverse("curation:review_next", kwargs={"slug": project.slug}),
        "example": example,
        "held": held,
        "draft": draft,
        "form": source,
        "turns": list(enumerate(source["messages"])),
        "other_tags": ", ".join(tag for tag in source["tags"] if tag != "edge_case"),
        "violations": formats.answer_violations(project.output_format, answer),
        "progress": getattr(example, "progress", None) or selectors.review_progress(project=project),
        "previous_id": previous_id,
        "my_review": None
        if fresh
        else Review.objects.filter(example=example, reviewer=request.user, round=example.review_round).first(),
        # The import writes no revision; the first change stores the original and itself, then one per change.
        "revision_count": 0 if example.version == 1 else example.version,
        "queue_label": request.GET.get("label") or request.POST.get("queue_label", ""),
        "error": error,
        **extra,
    }


# The panel's links to its example, made from one reverse each per process (a dozen reverses a page cost more than
# the claim's statement): the URL of a placeholder example, the placeholders then replaced.
EXAMPLE_URLS = ("review_example", "review_submit", "review_draft", "review_check", "review_render", "review_release",
                "example_history")  # fmt: skip
_SLUG, _PK = "slug-placeholder", 987654321


@cache
def _url_patterns() -> dict[str, str]:
    return {name: reverse(f"curation:{name}", kwargs={"slug": _SLUG, "pk": _PK}) for name in EXAMPLE_URLS}


def example_urls(slug: str, pk: int) -> dict[str, str]:
    """The review panel's URLs of example `pk` of project `slug`, by URL name."""
    # The id first: a slug may hold the placeholder id's digits, never the placeholder slug.
    return {name: url.replace(str(_PK), str(pk)).replace(_SLUG, slug) for name, url in _url_patterns().items()}


def _previous_id(request, project, example, *, fresh: bool, previous=None) -> int | None:
    """The example this reviewer reviewed last before this one (the "previous" key): the one just reviewed, the one
    the claim's statement found (PostgreSQL), or looked up."""
    if previous is not None:
        return previous.pk
    if fresh and hasattr(example, "previous_id"):
        return example.previous_id
    found = selectors.example_previous_reviewed(
        project=project, reviewer=request.user, before=example, reviewed_before=not fresh
    )
    return found.pk if found else None


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
    decision = request.POST.get("decision", "")
    queue_label = request.POST.get("queue_label", "")
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        return HttpResponse("The form lost its version; reload the page.", status=400)
    example = None
    try:
        # One transaction: the example read once, under its row lock, then the review and the next claim.
        with transaction.atomic():
            example = selectors.example_get(project=project, example_id=pk, for_review=True)
            mine = _submitted(request, example)
            if decision == Review.Decision.APPROVED and (
                warning := _format_unconfirmed(request, project, example, mine)
            ):
                return warning
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
                locked=True,
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
        example.refresh_from_db()  # rolled back: the row as it is, not as the failed write left the object
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
    context = _review_context(request, project, next_example, held=True, fresh=True, previous=example)
    return _panel(request, context)


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
