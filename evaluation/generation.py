"""Writes of generated candidates: fill the gaps the readiness check names ("P1: 120 more approved examples needed").

A lead asks a model (the frontier endpoint, a finished fine-tune, or the base model with few-shot examples of the
label) for new examples of a label. Each candidate is asked for from k approved seed examples of that label
(evaluation/candidates.py), then checked: the chat format and the import's limits (curation.formats, as an import
checks a line), the project's output format, the label its answer states, and near duplicates of the label's
examples or of an earlier candidate (the quality scan's MinHash at its threshold). What passes enters the queue
through the import's writer (counters, search index and quality scan as for any import): pending, tagged
`generated`, its provenance in `metadata.generated`. Nothing counts until an expert approves it.

It lives in evaluation, the layer that sees the examples (curation) and the runs (training) alike.
"""

from __future__ import annotations

import itertools
import time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import leases, server_paths
from core.errors import ServiceError
from curation import formats, quality
from curation import selectors as curation_selectors
from curation import services as curation_services
from curation.models import Example, Project, ReviewStatus
from training import artifacts, base_models
from training.models import TrainingRun

from . import candidates, harness, metrics
from .models import GenerationJob

TAG = "generated"
SEED_POOL = 500  # approved examples of the label the seeds are drawn from (the first by id)
REJECTIONS_KEPT = 50  # rejected candidates the report lists with their reason (all are counted)
EXCERPT = 300


def generation_sources(*, project: Project) -> dict[str, str]:
    """The sources configured now, with why the others are not: {source: ""} when usable, else the reason."""
    run = _latest_run(project)
    no_run = "no training run of this project has succeeded yet."
    return {
        GenerationJob.Source.FRONTIER: ""
        if settings.FINELINE_FRONTIER_BASE_URL
        else "no frontier endpoint is set (FINELINE_FRONTIER_BASE_URL).",
        GenerationJob.Source.FINE_TUNED: "" if run else no_run,
        GenerationJob.Source.BASE_FEW_SHOT: "" if run else no_run,
    }


def _latest_run(project: Project) -> TrainingRun | None:
    runs = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED)
    return runs.order_by("-finished_at", "-pk").first()


def generation_job_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    label: str,
    count: int,
    source: str,
    training_run: TrainingRun | None = None,
    enqueue: bool = True,
) -> GenerationJob:
    """Queue a job that asks `source` for `count` candidates of `label`. ServiceError (a 400) for a label the project
    does not have or without approved seeds, a count out of 1..FINELINE_GENERATION_MAX_COUNT, a source that is not
    configured, or a run that is not this project's finished one. Local sources run on the `gpu` queue, the frontier
    endpoint on `default`."""
    if not isinstance(label, str) or label not in project.labels:
        known = ", ".join(project.labels) or "none"
        raise ServiceError(f"the project has no label {label!r}; its labels: {known}.", field="label")
    limit = settings.FINELINE_GENERATION_MAX_COUNT
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise ServiceError(f"`count` is a whole number from 1 to {limit}.", field="count")
    if source not in GenerationJob.Source.values:
        raise ServiceError(f"`source` is one of {', '.join(GenerationJob.Source.values)}.", field="source")
    why = generation_sources(project=project)[source]
    if why:
        raise ServiceError(f"the source {source} is not configured: {why}", field="source")
    if source == GenerationJob.Source.FRONTIER:
        training_run, model = None, settings.FINELINE_FRONTIER_MODEL
    else:
        training_run = training_run or _latest_run(project)
        if training_run.project_id != project.pk or training_run.status != TrainingRun.Status.SUCCEEDED:
            raise ServiceError("choose a training run of this project that succeeded.", field="training_run")
        what = "fine-tune" if source == GenerationJob.Source.FINE_TUNED else "base model, few-shot"
        model = f"run #{training_run.pk} {what} ({server_paths.redact(training_run.base_model)})"
    if not _seed_pool(project, label):
        raise ServiceError(f"there is no approved {label} example to write candidates from.", field="label")
    prompt = candidates.instruction(
        label=label,
        task_description=project.task_description,
        format_hint=candidates.format_hint(project.output_format),
    )
    job = GenerationJob.objects.create(
        project=project, created_by=user, label=label, count=count, source=source, training_run=training_run,
        model=model, prompt=prompt,
    )  # fmt: skip
    if enqueue:
        _enqueue(job.pk, source)
    return job


def _seed_pool(project: Project, label: str) -> list[int]:
    approved = Example.objects.filter(project=project, label=label, status=ReviewStatus.APPROVED)
    return list(approved.order_by("id").values_list("id", flat=True)[:SEED_POOL])


# --- Running a job -------------------------------------------------------------------------------------------------


class _Progress:
    """Counts candidates written on the row, at most one write a second, as the job's holder."""

    def __init__(self, job: GenerationJob, worker: str):
        self.job, self.worker, self.pending, self.written = job, worker, 0, time.monotonic()

    def write(self, **changes) -> None:
        leases.write(GenerationJob, self.job.pk, self.worker, **changes)

    def __call__(self, done: int) -> None:
        self.pending += done
        if time.monotonic() - self.written >= 1:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.write(done=F("done") + self.pending)
        self.pending, self.written = 0, time.monotonic()

    def stage(self, text: str) -> None:
        self.flush()
        self.job.log += f"{timezone.now():%H:%M:%S} {text}\n"
        self.write(stage=text, log=leases.log_kept(self.job.log))


def generation_job_execute(*, job_id: int, worker: str | None = None) -> GenerationJob | None:
    """Ask the model for the candidates, check them, write those that pass, and keep the report. None when another
    worker holds the job. Nothing is written before the end, so a job whose worker died starts over cleanly."""
    worker = worker or leases.worker_name()
    if not leases.claim(GenerationJob, job_id, worker):
        return None
    job = GenerationJob.objects.select_related("project", "training_run").get(pk=job_id)
    project = job.project
    progress = _Progress(job, worker)
    heartbeat = leases.Heartbeat(GenerationJob, job.pk, worker)  # renews the lease through a long model load
    heartbeat.start()
    started = time.perf_counter()
    try:
        progress.write(done=0, report={}, error="")
        pool = _seed_pool(project, job.label)
        seeds = dict(Example.objects.filter(pk__in=pool).values_list("pk", "messages"))
        choices = candidates.seed_choices(pool, count=job.count, k=settings.FINELINE_GENERATION_SEEDS, seed=job.pk)
        conversations = [
            candidates.generation_messages(system=job.prompt, label=job.label, seeds=[seeds[pk] for pk in chosen])
            for chosen in choices
        ]
        progress.stage(f"asking {job.model} for {job.count} candidate(s)")
        replies = _replies(job, conversations, progress)
        progress.flush()
        elapsed = time.perf_counter() - started
        progress.stage("checking the candidates: format, label, near duplicates")
        report = _check_and_write(job, replies, choices)
        report["seconds"] = round(elapsed, 3)
        report["per_second"] = round(job.count / elapsed, 3) if elapsed else None
        progress.write(**leases.finished(GenerationJob.Status.SUCCEEDED, report=report, stage="done", done=job.count))
    except leases.LeaseLost:
        return None  # another worker took the job over and starts it again
    except Exception as error:
        failure = server_paths.redact(f"{type(error).__name__}: {error}")
        leases.held(GenerationJob, job.pk, worker).update(**leases.finished(GenerationJob.Status.FAILED, error=failure))
        raise
    finally:
        heartbeat.stopped.set()
    job.refresh_from_db()
    return job


def _replies(job: GenerationJob, conversations: list[list[dict]], progress: _Progress) -> list[str | Exception]:
    """The model's reply to each conversation (an exception where a request failed)."""
    if job.source == GenerationJob.Source.FRONTIER:
        client = harness.openai_client(settings.FINELINE_FRONTIER_BASE_URL, settings.FINELINE_FRONTIER_API_KEY)
        return harness.api_replies(
            client, settings.FINELINE_FRONTIER_MODEL, conversations,
            max_tokens=settings.FINELINE_GENERATION_MAX_NEW_TOKENS, on_progress=progress,
        )  # fmt: skip
    run = job.training_run
    if run is None:
        raise ServiceError("the job's training run was deleted.", field="training_run")
    base = base_models.trained_base(run)  # checked again: never another project's folder
    adapter = None
    if job.source == GenerationJob.Source.FINE_TUNED:
        tuned = artifacts.run_artifact(run, "adapter" if run.method == "lora" else "model")
        if tuned is None:
            raise ServiceError(f"run #{run.pk} has no {run.method} weights in its own folder.", field="training_run")
        adapter, base = (str(tuned), base) if run.method == "lora" else (None, str(tuned))
    out = harness.local_answers(
        base, conversations, adapter_dir=adapter, batch_size=settings.FINELINE_EVAL_BATCH_SIZE,
        max_new_tokens=settings.FINELINE_GENERATION_MAX_NEW_TOKENS, latency_sample=0, on_progress=progress,
    )  # fmt: skip
    return list(out.answers)


def _label_reader(project: Project, seeds: list[list[dict]]):
    """How a candidate's answer states its label: where the format names it, else as the first label in the text
    when every seed's answer states its own that way; None when answers do not state labels."""
    read = metrics.label_reader(project.output_format, project.labels)
    if read is not None:
        return read
    labels = list(project.labels)
    answers = [formats.last_answer(seed) for seed in seeds]
    if answers and all(metrics.label_from_answer(answer, labels) for answer in answers):
        return lambda answer: metrics.label_from_answer(answer, labels)
    return None


def _check_and_write(job: GenerationJob, replies: list[str | Exception], choices: list[list[int]]) -> dict:
    """Check each reply in turn; write those that pass through the import; the report's counts and reasons."""
    project = job.project
    system_prompt = project.system_prompt
    fits = formats.answer_checker(project.output_format)
    limits = curation_services.import_limits()
    labels = frozenset(project.labels)
    seed_examples = Example.objects.filter(pk__in={pk for chosen in choices for pk in chosen})
    read = _label_reader(project, list(seed_examples.values_list("messages", flat=True)))
    counts = {"written": 0, "rejected_format": 0, "rejected_duplicate": 0, "errors": 0}
    rejections: list[dict] = []

    def reject(index: int, kind: str, reason: str, reply: str = "") -> None:
        counts["errors" if kind == "error" else f"rejected_{kind}"] += 1
        if len(rejections) < REJECTIONS_KEPT:
            reason, excerpt = formats.printable(reason), formats.printable(reply[:EXCERPT])
            rejections.append({"candidate": index + 1, "kind": kind, "reason": reason, "excerpt": excerpt})

    valid: list[tuple[int, formats.ParsedExample]] = []
    for index, reply in enumerate(replies):
        if isinstance(reply, Exception):
            why = server_paths.redact(f"the model could not be asked: {type(reply).__name__}: {reply}")
            reject(index, "error", why)
            continue
        try:
            messages = candidates.parse_candidate(reply, system_prompt=system_prompt)
        except candidates.CandidateError as error:
            reject(index, "format", str(error), reply)
            continue
        provenance = {
            "job": job.pk, "source": job.source, "model": job.model, "seed_ids": choices[index], "prompt": job.prompt,
        }  # fmt: skip
        row = {"messages": messages, "label": job.label, "tags": [TAG], "metadata": {"generated": provenance}}
        parsed = formats.parse_object(row, index + 1, fmt="openai", labels=labels, limits=limits)
        if isinstance(parsed, formats.LineError):
            reject(index, "format", f"not a valid example: {parsed.message}", reply)
            continue
        answer = formats.last_answer(parsed.messages)
        if fits is not None and fits(answer) is False:
            violations = formats.answer_violations(project.output_format, answer)
            reject(index, "format", "the answer does not fit the output format: " + "; ".join(violations[:2]), reply)
            continue
        stated = read(answer) if read is not None else None
        if read is not None and stated != job.label:
            reject(index, "format", f"the answer states {stated or 'no label'}, not {job.label}.", reply)
            continue
        valid.append((index, parsed))

    kept = []
    duplicates = _near_duplicates(project, job.label, [(index + 1, parsed.messages) for index, parsed in valid])
    for (index, parsed), duplicate in zip(valid, duplicates, strict=True):
        if duplicate:
            reject(index, "duplicate", duplicate, formats.last_answer(parsed.messages))
        else:
            kept.append(parsed)
    created_ids: list[int] = []
    if kept:
        imported = curation_services.import_examples(
            project=project, user=job.created_by, records=kept, fmt="openai", mode="partial",
            source=f"generation #{job.pk}",
        )  # fmt: skip
        created_ids = list(Example.objects.filter(import_job=imported).order_by("id").values_list("id", flat=True))
        counts["written"] = len(created_ids)
        for _ in range(len(kept) - len(created_ids)):  # the same messages as an example the project has
            counts["rejected_duplicate"] += 1
    return {**counts, "requested": job.count, "examples": created_ids, "rejections": rejections}


def _near_duplicates(project: Project, label: str, numbered: list[tuple[int, list[dict]]]) -> list[str]:
    """For each (candidate number, messages), why it is a near duplicate ("" when it is not): of an example of the
    label (any status), or of an earlier candidate. The quality scan's clustering (MinHash over word 3-grams, at the
    last scan's threshold)."""
    if not numbered:
        return []
    scan = curation_selectors.quality_scan_latest(project=project)
    threshold = scan.threshold if scan else quality.THRESHOLDS.near_duplicate_threshold
    existing = Example.objects.filter(project=project, label=label).values_list("id", "messages").iterator(2000)
    # Candidates get negative ids (-N for candidate N), so that they never clash with an example's.
    mine = ((-number, messages) for number, messages in numbered)
    clusters = quality.duplicate_clusters(itertools.chain(existing, mine), threshold=threshold)
    members: dict[int, list[int]] = {}
    for member, root in clusters.items():
        members.setdefault(root, []).append(member)
    reasons = []
    for number, _ in numbered:
        group = members.get(clusters.get(-number), [])
        examples = sorted(m for m in group if m > 0)
        earlier = sorted(-m for m in group if -number < m < 0)
        if examples:
            reasons.append(f"a near duplicate of example #{examples[0]}.")
        elif earlier:
            reasons.append(f"a near duplicate of candidate {earlier[0]} of this job.")
        else:
            reasons.append("")
    return reasons


def generation_jobs_recover() -> int:
    """Requeue the jobs whose worker died (lease expired while running); they start over."""

    def enqueue(job_id: int) -> None:
        _enqueue(job_id, GenerationJob.objects.values_list("source", flat=True).get(pk=job_id))

    return leases.recover_expired(GenerationJob, statuses=[GenerationJob.Status.RUNNING], enqueue=enqueue)


def generation_queue(source: str) -> str:
    """The frontier endpoint is a CPU's work (HTTP); a local model's is a GPU's."""
    return "default" if source == GenerationJob.Source.FRONTIER else "gpu"


def _enqueue(job_id: int, source: str) -> None:
    from .tasks import generation_task

    queue = generation_queue(source)
    transaction.on_commit(lambda: generation_task.apply_async(args=[job_id], queue=queue))
