"""Browser pages of training: the runs of a project with the launch form and its pre-flight, and a run's live page.

A run's page polls its own URL with htmx while the run is active; the fragment (templates/training/htmx/) carries
the status, progress, log tail, the metric series the charts redraw from, and the artifacts once it is done.
"""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import leases
from core.errors import ServiceError
from curation import selectors as curation_selectors
from curation.models import DatasetVersion, Membership

from . import artifacts, selectors, services
from .forms import FORM_OPTIONS, TrainingRunForm
from .models import ChatReply, TrainingRun
from .presets import PRESETS, preset_default
from .recipes.config import OPTIONS


def _form(request, project, data=None) -> TrainingRunForm:
    base_models = selectors.base_model_choices()
    if data is not None:
        return TrainingRunForm(data, project=project, base_models=base_models)
    latest = curation_selectors.dataset_version_latest(project=project)
    base = base_models[0] if base_models else selectors.TINY_LOCAL
    initial = TrainingRunForm.initial_for(preset_default(base_model=base), base, latest.number if latest else None)
    initial["max_seq_length"] = project.max_seq_length  # a run's default: the length readiness judges by
    return TrainingRunForm(initial=initial, project=project, base_models=base_models)


def _preflight(project, form: TrainingRunForm) -> dict:
    """Estimates for whatever parses in the form; a setting out of range becomes a warning, not an error."""
    if form.is_bound:
        form.is_valid()
        data = form.cleaned_data
    else:
        data = {name: form.initial.get(name) for name in form.fields}
    options = form.options() if form.is_bound else {k: v for k, v in data.items() if k in FORM_OPTIONS}
    warnings = []
    try:
        options = services.training_options_clean({k: v for k, v in options.items() if v is not None})
    except ServiceError as error:
        warnings.append(error.message)
        options = {}
    version = DatasetVersion.objects.filter(project=project, number=data.get("dataset_version") or 0).first()
    # as typed, even when the form refused it: the pre-flight says why the run could not start
    base_model = form.data.get("base_model") if form.is_bound else data.get("base_model")
    result = selectors.training_run_preflight(
        project=project,
        version=version,
        base_model=(base_model or selectors.TINY_LOCAL).strip(),
        method=data.get("method") or "lora",
        options=options,
    )
    result["warnings"] = warnings + result["warnings"]
    return result


@login_required
@require_http_methods(["GET", "POST"])
def run_list(request, slug: str):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    is_lead = project.user_role == Membership.Role.LEAD
    form = None
    if request.method == "POST":
        if not is_lead:
            raise PermissionDenied("Only a project lead can launch a run.")
        form = _form(request, project, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                run = services.training_run_create(
                    project=project,
                    user=request.user,
                    dataset_version=DatasetVersion.objects.get(project=project, number=data["dataset_version"]),
                    base_model=data["base_model"],
                    method=data["method"],
                    options=form.options(),
                    override_readiness=data["override_readiness"],
                )
            except ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                flash.success(request, f"Run #{run.pk} is queued.")
                return redirect("training:run_detail", slug=project.slug, pk=run.pk)
    elif is_lead:
        form = _form(request, project)
    context = {
        "project": project,
        "is_lead": is_lead,
        "runs": selectors.training_run_list(project=project)[:50],
        "form": form,
        "preflight": _preflight(project, form) if form is not None else None,
        "presets": {key: {"method": p["method"], **p["options"]} for key, p in PRESETS.items()},
    }
    return render(request, "training/run_list.html", context, status=400 if form is not None and form.errors else 200)


@login_required
@require_POST
def run_preflight(request, slug: str):
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    context = {"project": project, "preflight": _preflight(project, _form(request, project, request.POST))}
    return render(request, "training/htmx/preflight.html", context)


LOG_LINES = 40


def _run_context(request, project, run: TrainingRun) -> dict:
    return {
        "project": project,
        "run": run,
        "is_lead": project.user_role == Membership.Role.LEAD,
        "eta": selectors.training_run_eta(run=run),
        "series": selectors.training_run_series(run=run),
        "log_tail": "\n".join(leases.log_kept(run.log).splitlines()[-LOG_LINES:]),
        "log_lines": LOG_LINES,
        "artifacts": selectors.training_run_artifact_list(run=run),
    }


@login_required
@require_GET
def run_detail(request, slug: str, pk: int):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    run = get_object_or_404(TrainingRun.objects.select_related("dataset_version", "created_by"), project=project, pk=pk)
    context = _run_context(request, project, run)
    if request.htmx:
        return render(request, "training/htmx/run_live.html", {**context, "oob": True})
    context["settings_rows"] = [
        (key, ", ".join(value) if isinstance(value, list) else value)
        for key, value in sorted(run.config.items())
        if key != "method"
    ]
    context["preflight"] = selectors.training_run_estimate(
        project=project,
        version=None,
        base_model=run.base_model,
        method=run.method,
        options={k: v for k, v in run.config.items() if k in OPTIONS},
    )
    return render(request, "training/run_detail.html", context)


@login_required
@require_POST
def run_cancel(request, slug: str, pk: int):
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    run = services.training_run_cancel(run=get_object_or_404(TrainingRun, project=project, pk=pk))
    flash.info(request, f"Run #{run.pk}: {run.get_status_display().lower()}.")
    return redirect("training:run_detail", slug=project.slug, pk=run.pk)


@login_required
@require_POST
def run_merge(request, slug: str, pk: int):
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    try:
        services.training_run_merge_request(run=get_object_or_404(TrainingRun, project=project, pk=pk))
        flash.info(request, "The merge is queued on a GPU worker.")
    except ServiceError as error:
        flash.error(request, error.message)
    return redirect("training:run_detail", slug=project.slug, pk=pk)


def artifact_response(run: TrainingRun, name: str) -> StreamingHttpResponse:
    """The run's artifact `name` as a tar download (the browser page and the API both answer with it)."""
    artifact = artifacts.download_artifact(run, name)
    if artifact is None:
        raise Http404("No such artifact.")
    top = f"{run.project.slug}-run{run.pk}-{name}"
    response = StreamingHttpResponse(artifacts.tar_stream(artifact, top), content_type="application/x-tar")
    response["Content-Disposition"] = f'attachment; filename="{top}.tar"'
    return response


@login_required
@require_GET
def run_artifact(request, slug: str, pk: int, name: str):
    project = curation_selectors.project_get(user=request.user, slug=slug)
    return artifact_response(get_object_or_404(TrainingRun, project=project, pk=pk), name)


def _chat_page(request, project, run: TrainingRun, *, message: str = "", reply=None, error: str = "", status=200):
    context = {
        "project": project,
        "run": run,
        "is_lead": True,
        "weights": artifacts.chat_weights(run),
        "examples": selectors.chat_test_examples(run=run),
        "message": message,
        "compare_base": True,
        "reply": selectors.chat_reply_data(reply=reply) if reply is not None else None,
        "error": error,
    }
    return render(request, "training/run_chat.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def run_chat(request, slug: str, pk: int):
    """Leads: type a message (or pick a test example) and see the fine-tune and the base model answer side by side.
    The POST answers with the reply's fragment, which polls itself while a `gpu` worker streams the answers in."""
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    run = get_object_or_404(TrainingRun.objects.select_related("dataset_version"), project=project, pk=pk)
    if request.method == "POST":
        message = request.POST.get("message", "")
        try:
            reply = services.chat_reply_create(
                run=run,
                user=request.user,
                messages=[{"role": "user", "content": message}],
                compare_base=request.POST.get("compare_base") == "1",
            )
        except ServiceError as error:
            if request.htmx:
                context = {"project": project, "run": run, "error": error.message}
                return render(request, "training/htmx/chat_reply.html", context, status=400)
            return _chat_page(request, project, run, message=message, error=error.message, status=400)
        if request.htmx:
            context = {"project": project, "run": run, "reply": selectors.chat_reply_data(reply=reply)}
            return render(request, "training/htmx/chat_reply.html", context)
        return redirect("training:run_chat_reply", slug=project.slug, pk=run.pk, reply=reply.pk)
    message, error = "", ""
    picked = request.GET.get("example", "")
    if picked:
        found = [e for e in selectors.chat_test_examples(run=run) if str(e["id"]) == picked]
        if not found:
            return _chat_page(request, project, run, error="No such test example in this run's version.", status=400)
        message = found[0]["message"]
    return _chat_page(request, project, run, message=message, error=error)


@login_required
@require_GET
def run_chat_reply(request, slug: str, pk: int, reply: int):
    project = curation_selectors.project_get(user=request.user, slug=slug, lead=True)
    run = get_object_or_404(TrainingRun.objects.select_related("dataset_version"), project=project, pk=pk)
    found = get_object_or_404(ChatReply, run=run, pk=reply)
    if request.htmx:
        context = {"project": project, "run": run, "reply": selectors.chat_reply_data(reply=found)}
        return render(request, "training/htmx/chat_reply.html", context)
    user_turns = [m["content"] for m in found.messages if m["role"] == "user"]
    return _chat_page(request, project, run, message=user_turns[-1] if user_turns else "", reply=found)
