"""Browser pages of evaluation: the project's evaluations (launch, history), one evaluation's verdict, table,
charts and per-example comparison, and the prompt variants of the base-model baseline."""

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRefresh

from core.errors import ServiceError
from core.params import form_int
from curation import selectors as curation_selectors
from curation.models import Membership
from training import selectors as training_selectors
from training.models import TrainingRun

from . import generation, metrics, selectors, services, verdicts
from .models import SYSTEMS, Evaluation, EvaluationAnswer, GenerationJob, PromptVariant

PAGE = 20
# The metrics a lead can make the verdict's (latency and cost are shown, rarely decided on).
CHOOSABLE = ["format_accuracy", "label_accuracy", "macro_f1", "content_relevance", "chrf", "hallucination_rate"]


def _lead(project) -> bool:
    return project.user_role == Membership.Role.LEAD


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_list(request, slug: str):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    if request.method == "POST":
        if not _lead(project):
            raise PermissionDenied("Only a project lead can start an evaluation.")
        run_id = form_int(request.POST.get("training_run"))
        run = TrainingRun.objects.filter(project=project, pk=run_id).first() if run_id is not None else None
        try:
            if run is None:
                raise ServiceError("choose a finished training run.")
            evaluation = services.evaluation_create(
                project=project,
                user=request.user,
                training_run=run,
                systems=request.POST.getlist("systems"),
                primary_metrics=request.POST.getlist("primary_metrics"),
            )
        except ServiceError as error:
            flash.error(request, error.message)
        else:
            return redirect("evaluation:evaluation_detail", slug=slug, pk=evaluation.pk)
    shape = selectors.evaluation_task_shape(
        project=project,
        version=curation_selectors.dataset_version_latest(project=project),
        judge_configured=bool(settings.FINELINE_JUDGE_BASE_URL),
    )
    context = {
        "project": project,
        "is_lead": _lead(project),
        "evaluations": selectors.evaluation_list(project=project)[:50],
        "runs": TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED)[:50],
        "systems": [(system, verdicts.SYSTEM_NAMES[system]) for system in SYSTEMS],
        "metric_names": [(name, verdicts.METRIC_NAMES[name]) for name in CHOOSABLE],
        "default_primary": shape["primary"],
        "shape": shape,
        "history": selectors.evaluation_history(project=project),
        "selected_run": request.GET.get("run"),
    }
    return render(request, "evaluation/evaluation_list.html", context)


@login_required
@require_GET
def evaluation_detail(request, slug: str, pk: int):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    evaluation = get_object_or_404(selectors.evaluation_list(project=project), pk=pk)
    context = {
        "project": project,
        "evaluation": evaluation,
        "is_lead": _lead(project),
        "table": selectors.evaluation_table(evaluation=evaluation),
        "verdict": selectors.evaluation_verdict(evaluation=evaluation, system_names=verdicts.SYSTEM_NAMES),
        "metric_names": verdicts.METRIC_NAMES,
        "lower_is_better": [name for name, higher in metrics.HIGHER_IS_BETTER.items() if not higher],
        "agreement": selectors.judge_agreement(evaluation=evaluation),
        "agreement_min": metrics.AGREEMENT_MIN,
        "ratings_min": metrics.RATINGS_MIN,
    }
    if request.htmx and request.GET.get("part") == "live":
        if evaluation.status not in Evaluation.ACTIVE:
            return HttpResponseClientRefresh()  # it just finished: the whole page now has results to show
        return render(request, "evaluation/htmx/evaluation_live.html", context)
    if evaluation.training_run is not None:
        context["run_series"] = training_selectors.training_run_series(run=evaluation.training_run)
    context["failures"] = selectors.evaluation_failures(evaluation=evaluation)
    return render(request, "evaluation/evaluation_detail.html", context)


@login_required
@require_GET
def evaluation_examples(request, slug: str, pk: int):
    """The per-example comparison, a page at a time (htmx fragment)."""
    project = curation_selectors.project_get(user=request.user, slug=slug)
    evaluation = get_object_or_404(selectors.evaluation_list(project=project), pk=pk)
    failures_only = request.GET.get("failures") == "1"
    try:
        page = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        page = 1
    rows = selectors.evaluation_examples(
        evaluation=evaluation, failures_only=failures_only, offset=(page - 1) * PAGE, limit=PAGE + 1
    )
    context = {
        "project": project,
        "evaluation": evaluation,
        "rows": rows[:PAGE],
        "page": page,
        "offset": (page - 1) * PAGE,
        "has_next": len(rows) > PAGE,
        "failures_only": failures_only,
        "names": verdicts.SYSTEM_NAMES,
        "is_lead": _lead(project),
    }
    return render(request, "evaluation/htmx/examples.html", context)


RELEVANCE = [
    (1, "off the point"),
    (2, "touches it"),
    (3, "partly answers"),
    (4, "answers it"),
    (5, "fully answers it"),
]


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_rate(request, slug: str, pk: int):
    """Rating answers blind, one at a time (any member: experts and leads): the source, the reference and an answer
    with no system name; relevance 1-5 and whether it states something the source does not support. A save shows the
    next unrated answer of the seeded sample (htmx swap; a redirect without script); ?answer=<id> shows one again to
    change its rating."""
    project = curation_selectors.project_get(user=request.user, slug=slug)
    evaluation = get_object_or_404(selectors.evaluation_list(project=project), pk=pk)
    status, error, saved, shown = 200, "", None, None
    if request.method == "POST":
        answer = get_object_or_404(EvaluationAnswer, evaluation=evaluation, pk=_id(request.POST.get("answer", "")))
        unsupported = {"yes": True, "no": False}.get(request.POST.get("unsupported", ""))
        try:
            if unsupported is None:
                raise ServiceError("Say whether the answer states something the source does not support (y or n).")
            services.answer_rating_save(
                answer=answer,
                rater=request.user,
                relevance=form_int(request.POST.get("relevance")) or 0,
                unsupported=unsupported,
            )
        except ServiceError as failure:
            status, error, shown = 400, failure.message[0].upper() + failure.message[1:], answer.pk
        else:
            if not request.htmx:
                return redirect("evaluation:evaluation_rate", slug=slug, pk=pk)
            saved = answer.pk
    elif request.GET.get("answer"):
        shown = _id(request.GET["answer"])
    state = selectors.rating_next(evaluation=evaluation, rater=request.user, answer_id=shown)
    if shown is not None and state["answer"] is None and status == 200:
        raise Http404("That answer is not among those to rate.")
    context = {
        "project": project,
        "evaluation": evaluation,
        "state": state,
        "error": error,
        "saved": saved,
        "relevance_choices": RELEVANCE,
        "posted": request.POST if error else None,
    }
    template = "evaluation/htmx/rating.html" if request.htmx else "evaluation/evaluation_rate.html"
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["POST"])
def evaluation_send_to_review(request, slug: str, pk: int):
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    evaluation = get_object_or_404(selectors.evaluation_list(project=project), pk=pk)
    items = [pk for pk in map(form_int, request.POST.getlist("item")) if pk is not None] or None
    try:
        sent = services.evaluation_send_to_review(evaluation=evaluation, user=request.user, item_ids=items)
    except ServiceError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, f"{sent} example(s) are back in the review queue, tagged eval-{evaluation.pk}.")
    return redirect("evaluation:evaluation_detail", slug=slug, pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
def prompt_variants(request, slug: str):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    variant = None
    if request.GET.get("edit"):
        variant = get_object_or_404(PromptVariant, project=project, pk=_id(request.GET["edit"]))
    if request.method == "POST":
        if not _lead(project):
            raise PermissionDenied("Only a project lead can edit prompts.")
        if request.POST.get("delete"):
            services.prompt_variant_delete(
                variant=get_object_or_404(PromptVariant, project=project, pk=_id(request.POST["delete"]))
            )
            flash.success(request, "Deleted.")
            return redirect("evaluation:prompt_variants", slug=slug)
        if request.POST.get("variant"):
            variant = get_object_or_404(PromptVariant, project=project, pk=_id(request.POST["variant"]))
        try:
            saved = services.prompt_variant_save(
                project=project,
                user=request.user,
                variant=variant,
                name=request.POST.get("name", ""),
                system_prompt=request.POST.get("system_prompt", ""),
                few_shot=request.POST.getlist("few_shot"),
            )
        except ServiceError as error:
            flash.error(request, error.message)
        else:
            flash.success(request, f"Saved {saved.name!r}.")
            return redirect("evaluation:prompt_variants", slug=slug)
    version = curation_selectors.dataset_version_latest(project=project)
    candidates = []
    if version is not None:
        items = version.items.filter(split="train").order_by("label", "id").values("example_id", "label", "messages")
        label = request.GET.get("label", "")
        if label:
            items = items.filter(label=label)
        candidates = Paginator(items, 30).get_page(request.GET.get("page"))
    chosen = set(variant.few_shot) if variant else set()
    context = {
        "project": project,
        "is_lead": _lead(project),
        "variants": project.prompt_variants.all(),
        "variant": variant,
        "chosen": chosen,
        "chosen_elsewhere": sorted(chosen - {item["example_id"] for item in candidates}),
        "version": version,
        "candidates": candidates,
        "label": request.GET.get("label", ""),
    }
    return render(request, "evaluation/prompt_variants.html", context)


def _id(value: str) -> int:
    """A row id from a form or query parameter; anything else is no such row (404), never a 500."""
    pk = form_int(value)
    if pk is None:
        raise Http404("No such item.")
    return pk


@login_required
@require_GET
def project_history(request, slug: str):
    """Versions, runs and evaluations on one time line, newest first, with each evaluation's verdict and primary
    metrics beside the evaluation before it: which round of review moved the verdict."""
    project = curation_selectors.project_get(user=request.user, slug=slug)
    context = {
        "project": project,
        "entries": selectors.project_history(project=project),
        "limit": selectors.HISTORY_LIMIT,
    }
    return render(request, "evaluation/project_history.html", context)


@login_required
@require_http_methods(["POST"])
def generation_start(request, slug: str):
    """The readiness panel's "Generate candidates" for a label that lacks examples (leads)."""
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    try:
        count = form_int(request.POST.get("count"))
        if count is None:
            raise ServiceError("`count` is a whole number.")
        job = generation.generation_job_create(
            project=project,
            user=request.user,
            label=request.POST.get("label", ""),
            count=count,
            source=request.POST.get("source", ""),
        )
    except ServiceError as error:
        flash.error(request, f"No candidates asked for: {error.message}")
        return redirect("curation:project_detail", slug=slug)
    return redirect("evaluation:generation_detail", slug=slug, pk=job.pk)


@login_required
@require_GET
def generation_detail(request, slug: str, pk: int):
    """A generation job: its progress while it runs (htmx polls the fragment), then its report."""
    project = curation_selectors.project_get(user=request.user, slug=slug)
    job = get_object_or_404(selectors.generation_job_list(project=project), pk=pk)
    context = {"project": project, "job": job, "report": job.report, "sources": GenerationJob.Source}
    if request.htmx and request.GET.get("part") == "live":
        return render(request, "evaluation/htmx/generation_live.html", context)
    return render(request, "evaluation/generation_detail.html", context)
