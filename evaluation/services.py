"""Writes of evaluation: launch an evaluation, run it on a worker, keep the base model's prompt variants.

The evaluation compares the systems on the test split of the run's frozen version, answer by answer, scores every
answer (evaluation/metrics.py), stores the answers, the metrics per system and the verdict on the row. The verdict
(evaluation/verdicts.py) rests on 95% paired bootstrap intervals of the differences, computed from the per-example
scores; a majority-label row (no model) is the floor that label accuracy is read against.
"""

from __future__ import annotations

import functools
import json

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from core import leases, server_paths
from core.errors import ServiceError
from curation import formats
from curation import services as curation_services
from curation.models import DatasetVersion, DatasetVersionItem, Example, Project
from training import artifacts, base_models
from training.models import TrainingRun

from . import harness, metrics, selectors, verdicts
from .models import SYSTEMS, AnswerRating, Evaluation, EvaluationAnswer, PromptVariant

DEFAULT_PRIMARY = ["format_accuracy", "label_accuracy"]  # without a version to read the task's shape from
CASE_SHARES = ("format_accuracy", "label_accuracy", "macro_f1")  # higher-is-better shares of the test cases
VAL_SAMPLE = 40  # validation examples each prompt variant is scored on


def evaluation_create(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    training_run: TrainingRun,
    systems: list[str] | None = None,
    primary_metrics: list[str] | None = None,
    enqueue: bool = True,
) -> Evaluation:
    """Queue an evaluation of a finished run against the baselines, on its dataset version's test split. Without
    primary metrics, those that fit the task's shape (selectors.evaluation_task_shape).

    `enqueue=False` leaves it for the caller to run in its own process (`evaluate --inline`): no worker may claim it.
    """
    if training_run.project_id != project.pk:
        raise ServiceError("that training run belongs to another project.", field="training_run")
    if training_run.status != TrainingRun.Status.SUCCEEDED:
        raise ServiceError("only a run that succeeded can be evaluated.", field="training_run")
    systems = list(systems or SYSTEMS)
    unknown = [system for system in systems if system not in SYSTEMS]
    if unknown or not systems:
        raise ServiceError(f"systems are chosen among {', '.join(SYSTEMS)}.", field="systems")
    primary = list(primary_metrics or []) or evaluation_default_primary(
        project=project, version=training_run.dataset_version
    )
    if not primary or any(metric not in metrics.HIGHER_IS_BETTER for metric in primary):
        raise ServiceError(f"primary metrics are chosen among {', '.join(metrics.HIGHER_IS_BETTER)}.", field="primary")
    if not training_run.dataset_version.items.filter(split="test").exists():
        raise ServiceError("the run's dataset version has no test split to evaluate on.", field="training_run")
    evaluation = Evaluation.objects.create(
        project=project,
        training_run=training_run,
        dataset_version=training_run.dataset_version,
        created_by=user,
        systems=[system for system in SYSTEMS if system in systems],
        primary_metrics=primary,
    )
    if enqueue:
        _enqueue(evaluation.pk)
    return evaluation


def evaluation_default_primary(*, project: Project, version: DatasetVersion | None) -> list[str]:
    """The primary metrics that fit the task's shape as the version shows it (the fixed default without one)."""
    if version is None:
        return list(DEFAULT_PRIMARY)
    shape = selectors.evaluation_task_shape(project=project, version=version, judge_configured=_judge_configured())
    return shape["primary"]


def prompt_variant_save(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    name: str,
    system_prompt: str = "",
    few_shot: list[int] | None = None,
    variant: PromptVariant | None = None,
) -> PromptVariant:
    """Create or edit a prompt variant; its few-shot examples must be approved examples of the project."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ServiceError("a variant needs a name of at most 100 characters.", field="name")
    try:
        few_shot = list(dict.fromkeys(int(pk) for pk in few_shot or []))  # in order, once each
    except (TypeError, ValueError):
        raise ServiceError("few-shot examples are given by their ids.", field="few_shot")
    if len(few_shot) > 16:
        raise ServiceError("at most 16 few-shot examples.", field="few_shot")
    found = set(Example.objects.filter(project=project, pk__in=few_shot).values_list("pk", flat=True))
    missing = [pk for pk in few_shot if pk not in found]
    if missing:
        raise ServiceError(f"no example {missing[0]} in this project.", field="few_shot")
    clash = PromptVariant.objects.filter(project=project, name=name).exclude(pk=getattr(variant, "pk", None))
    if clash.exists():
        raise ServiceError(f"a variant named {name!r} exists already.", field="name")
    variant = variant or PromptVariant(project=project, created_by=user)
    variant.name, variant.system_prompt, variant.few_shot = name, system_prompt, few_shot
    variant.save()
    return variant


def prompt_variant_delete(*, variant: PromptVariant) -> None:
    """Delete a prompt variant: the next evaluations choose among the others (or the automatic one)."""
    variant.delete()


# --- Running an evaluation -----------------------------------------------------------------------------------------


class _Progress:
    """Counts units of work on the row (answers generated, answers judged), at most one write a second."""

    def __init__(self, evaluation: Evaluation, worker: str):
        self.evaluation, self.worker, self.pending, self.written = evaluation, worker, 0, timezone.now()

    def write(self, **changes) -> None:
        leases.write(Evaluation, self.evaluation.pk, self.worker, **changes)  # LeaseLost once another worker holds it

    def __call__(self, done: int) -> None:
        self.pending += done
        if (timezone.now() - self.written).total_seconds() >= 1:
            self.flush()

    def flush(self) -> None:
        self.write(done=F("done") + self.pending)
        self.pending, self.written = 0, timezone.now()

    def stage(self, text: str) -> None:
        self.flush()
        self.write(stage=text)
        self.log(text)

    def log(self, line: str) -> None:
        self.evaluation.log += f"{timezone.now():%H:%M:%S} {line}\n"
        self.write(log=leases.log_kept(self.evaluation.log))


def _queries(version: DatasetVersion, split: str, limit: int | None = None) -> list[dict]:
    """The split's examples as queries: the conversation up to the last answer, the reference answer and label,
    and the source (the user's turns plus any `sources` in the example's metadata)."""
    items = list(
        version.items.filter(split=split).order_by("id").values("id", "messages", "label", "example_id")[:limit]
    )
    metadata = dict(
        Example.objects.filter(pk__in=[i["example_id"] for i in items if i["example_id"]]).values_list("pk", "metadata")
    )
    queries = []
    for item in items:
        messages = item["messages"]
        last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
        sources = (metadata.get(item["example_id"]) or {}).get("sources") or []
        if isinstance(sources, str):
            sources = [sources]
        user_turns = [m["content"] for m in messages[:last] if m["role"] == "user"]
        queries.append(
            {
                "item": item["id"],
                "messages": messages[:last],
                "reference": messages[last]["content"],
                "label": item["label"] or None,
                "source": "\n".join(user_turns + [json.dumps(s) if not isinstance(s, str) else s for s in sources]),
            }
        )
    return queries


def _frontier_configured() -> bool:
    return bool(settings.FINELINE_FRONTIER_BASE_URL)


def _judge_configured() -> bool:
    return bool(settings.FINELINE_JUDGE_BASE_URL)


def _judge_client():
    if not settings.FINELINE_JUDGE_BASE_URL:
        return None
    return harness.openai_client(settings.FINELINE_JUDGE_BASE_URL, settings.FINELINE_JUDGE_API_KEY)


def _shots(version: DatasetVersion, example_ids: list[int]) -> tuple[list[list[dict]], list[int]]:
    """The few-shot examples' messages, keeping only those in the version's training split (never a test one)."""
    train = dict(
        DatasetVersionItem.objects.filter(version=version, split="train", example_id__in=example_ids).values_list(
            "example_id", "messages"
        )
    )
    return [train[pk] for pk in example_ids if pk in train], [pk for pk in example_ids if pk not in train]


def _auto_variant(project: Project, version: DatasetVersion) -> PromptVariant:
    """When the lead has saved no variant: the project's system prompt with one training example per label."""
    chosen = []
    for label in project.labels or [""]:
        item = version.items.filter(split="train", label=label).order_by("id").values_list("example_id", flat=True)
        if item.first():
            chosen.append(item.first())
    return PromptVariant(
        project=project, name="automatic: system prompt + one example per label", system_prompt=project.system_prompt,
        few_shot=chosen[:6],
    )  # fmt: skip


def _best_variant(evaluation: Evaluation, base: str, fits, read, progress: _Progress) -> tuple[PromptVariant, str]:
    """The variant with the best score on (a sample of) the validation split: format accuracy when the project
    has a format, else label accuracy when labels can be read from answers (`read`), else the mean chrF against the
    reference answers. Choosing on validation keeps the test split for the comparison."""
    project, version = evaluation.project, evaluation.dataset_version
    variants = list(PromptVariant.objects.filter(project=project)) or [_auto_variant(project, version)]
    if len(variants) == 1:
        return variants[0], f"the only variant, {variants[0].name!r}"
    val = _queries(version, "val", VAL_SAMPLE)
    scored = []
    for variant in variants:
        shots, _ = _shots(version, variant.few_shot)
        conversations = [harness.prompt_messages(variant.system_prompt, shots, q["messages"]) for q in val]
        out = harness.local_answers(
            base, conversations, batch_size=settings.FINELINE_EVAL_BATCH_SIZE, latency_sample=0,
            max_new_tokens=settings.FINELINE_EVAL_MAX_NEW_TOKENS, on_progress=progress,
        )  # fmt: skip
        if fits is not None:
            score = metrics.format_accuracy(out.answers, fits)
        elif read is not None:
            score = metrics.label_accuracy([read(a) for a in out.answers], [q["label"] for q in val])
        else:
            score = metrics.mean(metrics.chrf(a, q["reference"]) for a, q in zip(out.answers, val, strict=True))
        PromptVariant.objects.filter(pk=variant.pk).update(last_score=score)
        scored.append((score if score is not None else -1, variant))
        progress.log(f"prompt variant {variant.name!r}: {score} on {len(val)} validation examples")
    score, best = max(scored, key=lambda pair: pair[0])
    return best, f"{best.name!r}, best of {len(variants)} variants on the validation split ({score:.2f})"


@functools.cache
def _embedder():
    """One sentence-embedding model per worker process (3-4 s to load), shared by every system and evaluation."""
    return harness.load_embedder()


def _score(
    system: str, out: harness.Answers, queries: list[dict], fits, read, judge, progress
) -> tuple[dict, list[dict], dict, dict]:
    """Per-answer scores, the system's metrics and its per-example values (for the verdict's intervals); `methods`
    says how relevance and hallucination were measured. `read` gives a generated answer's label; None when labels
    cannot be read from answers, and then label metrics of generated answers are None (the classifier predicts
    labels and keeps them)."""
    references = [q["label"] for q in queries]
    classifier = system == "embedding_classifier"
    if classifier:
        predicted = list(out.answers)
    elif read is not None:
        predicted = [read(answer) for answer in out.answers]
    else:
        predicted = None
    rows = [
        {
            "format_ok": None if classifier or fits is None else fits(answer),
            "label": (predicted[i] or "") if predicted is not None else "",
            "label_ok": (predicted[i] == references[i]) if predicted is not None and references[i] else None,
            "relevance": None,
            "chrf": None if classifier else round(metrics.chrf(answer, queries[i]["reference"]), 4),
            "hallucinated": None,
            "unsupported": [],
        }
        for i, answer in enumerate(out.answers)
    ]
    methods = {}
    if not classifier:
        if judge is not None:
            items = [
                {"source": q["source"], "reference": q["reference"], "answer": answer}
                for q, answer in zip(queries, out.answers, strict=True)
            ]
            grades = harness.judge(judge, settings.FINELINE_JUDGE_MODEL, items, on_progress=progress)
            for row, grade in zip(rows, grades, strict=True):
                if grade is not None:
                    row["relevance"] = float(grade["relevance"])
                    row["unsupported"] = grade["unsupported_claims"][:20]
                    row["hallucinated"] = bool(grade["unsupported_claims"])
            failed = sum(1 for grade in grades if grade is None)
            methods = {"relevance": "LLM judge, 1-5", "hallucination": "LLM judge"}
            if failed:
                methods["judge_failures"] = failed
        else:
            similar = harness.similarities(out.answers, [q["reference"] for q in queries], embedder=_embedder())
            for row, q, answer, value in zip(rows, queries, out.answers, similar, strict=True):
                row["relevance"] = round(value, 4)
                row["unsupported"] = metrics.unsupported_terms(answer, q["source"] + "\n" + q["reference"])[:20]
                row["hallucinated"] = bool(row["unsupported"])
            methods = {
                "relevance": "fallback: embedding cosine with the reference (no judge configured)",
                "hallucination": "fallback: numbers, names and identifiers absent from source and reference",
            }
    if system == "frontier":
        cost = metrics.cost_per_query_api(
            out.prompt_tokens or [], out.completion_tokens or [],
            settings.FINELINE_FRONTIER_PRICE_IN, settings.FINELINE_FRONTIER_PRICE_OUT,
        )  # fmt: skip
    else:
        cost = metrics.cost_per_query_self_hosted(settings.FINELINE_GPU_HOURLY_USD, out.queries_per_second or 0)
    values = {
        "format_accuracy": metrics.format_accuracy(out.answers, fits) if not classifier else None,
        "label_accuracy": metrics.label_accuracy(predicted, references) if predicted is not None else None,
        "macro_f1": metrics.macro_f1(predicted, references) if predicted is not None else None,
        "content_relevance": metrics.content_relevance([row["relevance"] for row in rows]),
        "chrf": metrics.mean(row["chrf"] for row in rows),
        "hallucination_rate": metrics.hallucination_rate([row["hallucinated"] for row in rows]),
        "latency_p50_ms": metrics.percentile(out.latencies_ms, 50),
        "latency_p95_ms": metrics.percentile(out.latencies_ms, 95),
        "cost_per_query_usd": cost,
    }
    rounded = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()}
    return rounded, rows, methods, _per_example(rows, predicted, out.latencies_ms)


def _per_example(rows: list[dict], predicted: list[str | None] | None, latencies: list[float]) -> dict:
    """A system's values per test example, in the queries' order (so paired across systems), as metrics.compare
    takes them."""

    def number(value):
        return None if value is None else float(value)

    return {
        "format_accuracy": [number(row["format_ok"]) for row in rows],
        "label_accuracy": [number(row["label_ok"]) for row in rows],
        "content_relevance": [row["relevance"] for row in rows],
        "chrf": [row["chrf"] for row in rows],
        "hallucination_rate": [number(row["hallucinated"]) for row in rows],
        "labels": predicted,
        "latencies": list(latencies),
    }


def _majority_row(version: DatasetVersion, queries: list[dict]) -> tuple[dict, dict] | None:
    """The reference row that always answers the training split's most frequent label, with no model: a label
    accuracy is worth what it adds to this one's. None when the training or the test split carries no label."""
    references = [q["label"] for q in queries]
    counts = dict(version.items.filter(split="train").exclude(label="").values_list("label").annotate(n=Count("id")))
    found = metrics.majority_label(counts)
    if found is None or not any(references):
        return None
    label, share = found
    predicted = [label] * len(queries)
    values = dict.fromkeys(metrics.HIGHER_IS_BETTER)
    values["label_accuracy"] = round(metrics.label_accuracy(predicted, references), 6)
    values["macro_f1"] = round(metrics.macro_f1(predicted, references), 6)
    entry = {
        "system": "majority_label",
        "name": verdicts.SYSTEM_NAMES["majority_label"],
        "status": "succeeded",
        "metrics": values,
        "notes": f"no model: always answers {label}, the most frequent label of the training split ({share:.0%})",
        "reference": True,
    }
    per_example = {"label_accuracy": [float(label == r) if r else None for r in references], "labels": predicted}
    return entry, per_example


def evaluation_execute(*, evaluation_id: int, worker: str | None = None) -> Evaluation | None:
    """Answer the test split with every chosen system, score, store, decide. None if another worker holds it."""
    worker = worker or leases.worker_name()
    if not leases.claim(Evaluation, evaluation_id, worker):
        return None
    evaluation = Evaluation.objects.select_related("project", "training_run", "dataset_version").get(pk=evaluation_id)
    project, run = evaluation.project, evaluation.training_run
    progress = _Progress(evaluation, worker)
    heartbeat = leases.Heartbeat(Evaluation, evaluation.pk, worker)  # renews the lease through a long model load
    heartbeat.start()
    try:
        queries = _queries(evaluation.dataset_version, "test")
        fits = formats.answer_checker(project.output_format)
        judge = _judge_client()
        shape = selectors.evaluation_task_shape(
            project=project, version=evaluation.dataset_version, judge_configured=judge is not None, queries=queries
        )
        read = _label_reader(project, shape["label_source"])
        generating = [s for s in evaluation.systems if s != "frontier" or _frontier_configured()]
        judged = [s for s in generating if s != "embedding_classifier"] if judge else []
        progress.write(total=len(queries) * (len(generating) + len(judged)), done=0, results=[], verdict={}, error="")
        EvaluationAnswer.objects.filter(evaluation=evaluation).delete()  # a rerun after a lost worker starts over
        base = base_models.trained_base(run)  # checked again: never another project's folder
        results, per_example = [], {}
        for system in evaluation.systems:
            name = verdicts.SYSTEM_NAMES[system]
            entry = {"system": system, "name": name, "status": "succeeded", "metrics": {}, "notes": ""}
            try:
                out = _answers(system, evaluation, queries, base, fits, read, progress, entry)
            except (SoftTimeLimitExceeded, leases.LeaseLost):
                raise  # the evaluation is out of time, not this system: it fails as a whole and says so
            except Exception as error:  # one system failing does not lose the others
                entry.update(status="failed", notes=server_paths.redact(f"{type(error).__name__}: {error}"))
                progress.log(f"{system} failed: {entry['notes']}")
                results.append(entry)
                continue
            if out is None:
                results.append(entry)
                continue
            progress.stage(f"scoring {verdicts.SYSTEM_NAMES[system]}")
            entry["metrics"], rows, entry["methods"], per_example[system] = _score(
                system, out, queries, fits, read, judge, progress
            )
            entry["merged"] = out.merged
            EvaluationAnswer.objects.bulk_create(
                EvaluationAnswer(evaluation=evaluation, item_id=q["item"], system=system, answer=answer, **row)
                for q, answer, row in zip(queries, out.answers, rows, strict=True)
            )
            results.append(entry)
            progress.write(results=results)
        majority = _majority_row(evaluation.dataset_version, queries) if project.labels else None
        if majority is not None:
            results.append(majority[0])
            per_example["majority_label"] = majority[1]
        progress.stage("deciding: paired bootstrap intervals of the differences")
        decided = verdicts.verdict(results, evaluation.primary_metrics, per_example, queries, shape)
        _record_baseline(project, results, evaluation.primary_metrics)
        progress.flush()
        progress.write(**leases.finished(Evaluation.Status.SUCCEEDED, results=results, verdict=decided, stage="done"))
    except leases.LeaseLost:
        return None  # cut off past its lease: the worker that took the evaluation over starts it again and owns it
    except Exception as error:
        failure = server_paths.redact(f"{type(error).__name__}: {error}")
        failed = leases.finished(Evaluation.Status.FAILED, error=failure)
        leases.held(Evaluation, evaluation.pk, worker).update(**failed)
        raise
    finally:
        heartbeat.stopped.set()
    evaluation.refresh_from_db()
    return evaluation


def _label_reader(project: Project, source: str | None):
    """How a generated answer's label is read: where the output format names it, or as the first label stated in
    the text (when most reference answers state theirs); None when label metrics do not apply to generated answers."""
    if source == "format":
        return metrics.label_reader(project.output_format, project.labels)
    if source == "references":
        return functools.partial(metrics.label_from_answer, labels=list(project.labels))
    return None


def _answers(system, evaluation, queries, base, fits, read, progress, entry) -> harness.Answers | None:
    """One system's answers to the queries; None (with the reason in `entry`) when it does not apply here."""
    project, run = evaluation.project, evaluation.training_run
    local = {
        "batch_size": settings.FINELINE_EVAL_BATCH_SIZE,
        "max_new_tokens": settings.FINELINE_EVAL_MAX_NEW_TOKENS,
        "on_progress": progress,
    }
    progress.stage(f"answering with {verdicts.SYSTEM_NAMES[system]}")
    if system == "fine_tuned":
        # the run's own folder only (training.artifacts), whatever its row says
        tuned = artifacts.run_artifact(run, "adapter" if run.method == "lora" else "model")
        if tuned is None:
            raise ServiceError(f"run #{run.pk} has no {run.method} weights in its own folder.", field="training_run")
        adapter = str(tuned) if run.method == "lora" else None
        model = base if adapter else str(tuned)
        entry["notes"] = f"run #{run.pk}: {run.method} of {server_paths.redact(run.base_model)}"
        return harness.local_answers(model, [q["messages"] for q in queries], adapter_dir=adapter, **local)
    if system == "base_zero_shot":
        entry["notes"] = "the project's system prompt, no examples"
        conversations = [harness.prompt_messages(project.system_prompt, [], q["messages"]) for q in queries]
        return harness.local_answers(base, conversations, **local)
    if system == "base_best_prompt":
        variant, why = _best_variant(evaluation, base, fits, read, progress)
        shots, dropped = _shots(evaluation.dataset_version, variant.few_shot)
        entry["notes"] = f"prompt {why}; {len(shots)} few-shot example(s)"
        if dropped:
            entry["notes"] += f" ({len(dropped)} outside the training split left out)"
        entry["prompt"] = {"name": variant.name, "system_prompt": variant.system_prompt, "few_shot": variant.few_shot}
        conversations = [harness.prompt_messages(variant.system_prompt, shots, q["messages"]) for q in queries]
        return harness.local_answers(base, conversations, **local)
    if system == "frontier":
        if not _frontier_configured():
            entry.update(status="not_configured", notes="set FINELINE_FRONTIER_BASE_URL (and _MODEL, _API_KEY)")
            return None
        client = harness.openai_client(settings.FINELINE_FRONTIER_BASE_URL, settings.FINELINE_FRONTIER_API_KEY)
        entry["notes"] = f"{settings.FINELINE_FRONTIER_MODEL} with the project's system prompt"
        conversations = [harness.prompt_messages(project.system_prompt, [], q["messages"]) for q in queries]
        return harness.api_answers(client, settings.FINELINE_FRONTIER_MODEL, conversations, on_progress=progress)
    if system == "embedding_classifier":
        if not project.labels:
            entry.update(status="not_applicable", notes="the project has no label set")
            return None
        train = _queries(evaluation.dataset_version, "train")
        train = [q for q in train if q["label"]]
        text = lambda q: "\n".join(m["content"] for m in q["messages"] if m["role"] == "user")  # noqa: E731
        entry["notes"] = f"all-MiniLM-L6-v2 embeddings + logistic regression on {len(train)} training examples"
        out = harness.embedding_classifier(
            [text(q) for q in train], [q["label"] for q in train], [text(q) for q in queries]
        )
        progress(len(queries))
        return out
    raise ValueError(system)


def _record_baseline(project: Project, results: list[dict], primary: list[str]) -> None:
    """The best base-model score on the primary metrics (its weakest one), for the readiness advice ("the base model
    already handles 90% of cases"): only the metrics that are shares of cases; chrF or a relevance score is none."""
    scores = []
    for entry in results:
        if entry["system"] in ("base_zero_shot", "base_best_prompt") and entry["status"] == "succeeded":
            values = [entry["metrics"].get(m) for m in primary if m in CASE_SHARES]
            values = [v for v in values if v is not None]
            if values:
                scores.append(min(values))
    if scores:
        curation_services.project_update(project=project, baseline_score=max(scores))


def evaluation_send_to_review(
    *, evaluation: Evaluation, user: AbstractBaseUser | None, item_ids: list[int] | None = None
) -> int:
    """Put test examples back in the experts' queue, tagged `eval-<id>`: the ones given, or every example the
    fine-tuned model failed (wrong format, wrong label, or an unsupported claim)."""
    from .selectors import FAILED

    answers = EvaluationAnswer.objects.filter(evaluation=evaluation, system="fine_tuned")
    if item_ids is None:
        answers = answers.filter(FAILED)
    else:
        answers = answers.filter(item_id__in=item_ids)
    example_ids = list(answers.exclude(item__example=None).values_list("item__example_id", flat=True))
    if not example_ids:
        raise ServiceError("no example to send back: the fine-tuned model failed none of them.", field="items")
    return curation_services.examples_send_to_review(
        project=evaluation.project,
        example_ids=example_ids,
        user=user,
        tag=f"eval-{evaluation.pk}",
        comment=f"Sent back to review: the fine-tune of evaluation #{evaluation.pk} failed on it.",
    )


def answer_rating_save(
    *, answer: EvaluationAnswer, rater: AbstractBaseUser, relevance: int, unsupported: bool
) -> tuple[AnswerRating, bool]:
    """An expert's blind rating of an answer (relevance 1-5, whether it states something the source does not
    support), or their new one in place of the one they gave before. Returns the rating and whether it is new."""
    if isinstance(relevance, bool) or not isinstance(relevance, int) or not 1 <= relevance <= 5:
        raise ServiceError("relevance is a whole number from 1 to 5.", field="relevance")
    if not isinstance(unsupported, bool):
        raise ServiceError("unsupported is yes or no (true or false).", field="unsupported")
    return AnswerRating.objects.update_or_create(
        answer=answer, rater=rater, defaults={"relevance": relevance, "unsupported": unsupported}
    )


def evaluations_recover() -> int:
    """Requeue the evaluations whose worker died (lease expired while running); they start over."""
    return leases.recover_expired(Evaluation, statuses=[Evaluation.Status.RUNNING], enqueue=_enqueue)


def _enqueue(evaluation_id: int) -> None:
    from .tasks import evaluation_task

    transaction.on_commit(lambda: evaluation_task.apply_async(args=[evaluation_id], queue="gpu"))
