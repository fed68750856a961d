"""Reads of training data: the base models on offer, a run's pre-flight estimates, a run's live figures."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum, TextField
from django.db.models.functions import Cast, Length
from django.utils import timezone

from core import server_paths
from core.errors import ServiceError
from curation import quality
from curation import selectors as curation_selectors
from curation.models import DatasetVersion, Project

from . import artifacts, base_models
from .models import ChatReply, TrainingRun
from .recipes import estimate, tiny_local

TINY_LOCAL = tiny_local.NAME
CHARS_PER_TOKEN = 4.0  # until a quality scan has measured the project's own ratio

base_model_choices = base_models.base_model_choices


def base_model_shape(base_model: str) -> tuple[estimate.Shape | None, str]:
    """The base model's architecture and where it came from; (None, why) when it cannot be known offline, or when the
    model is not allowed (its folder is then not read)."""
    if base_model == TINY_LOCAL:
        tiny = tiny_local.TinyConfig()
        shape = estimate.Shape(
            hidden=tiny.hidden_size,
            intermediate=tiny.intermediate_size,
            layers=tiny.layers,
            heads=tiny.heads,
            kv_heads=tiny.heads,
            vocab=tiny.vocab_size,
            tied=True,
        )
        return shape, "tiny-local's settings"
    try:
        base_models.base_model_clean(base_model)
    except ServiceError as error:
        return None, error.message
    config = base_models.base_model_config(base_model)
    if config is not None:
        config = config.get("text_config", config)
        try:
            return estimate.Shape.from_config(config), "the model's config.json"
        except KeyError as missing:
            return None, f"its config.json lacks {missing}"
    if base_model in estimate.KNOWN_SHAPES:
        return estimate.Shape.from_config(estimate.KNOWN_SHAPES[base_model]), "the published architecture"
    return None, "its config.json is neither a local folder nor in the Hugging Face cache"


def version_train_stats(*, version: DatasetVersion) -> dict[str, int]:
    """Examples in the training split and an estimate of their tokens from one aggregate: their characters over the
    project's characters per token as its last quality scan counted them (CHARS_PER_TOKEN before any scan)."""
    row = version.items.filter(split="train").aggregate(
        examples=Count("id"), chars=Sum(Length(Cast("messages", TextField())))
    )
    scan = curation_selectors.quality_scan_latest(project=version.project)
    ratio = (scan.stats.get("chars_per_token") if scan else None) or CHARS_PER_TOKEN
    return {"examples": row["examples"] or 0, "tokens": int((row["chars"] or 0) / ratio)}


def measured_tokens_per_second(*, project: Project, base_model: str) -> tuple[float, TrainingRun] | None:
    """Training throughput of the project's last finished run of this base model, from its own step log."""
    run = (
        TrainingRun.objects.filter(project=project, base_model=base_model, status=TrainingRun.Status.SUCCEEDED)
        .only("pk", "metrics", "device")
        .first()
    )
    if run is None or len(run.metrics) < 3:
        return None
    window = run.metrics[-50:]
    seconds = window[-1].get("elapsed", 0) - window[0].get("elapsed", 0)
    tokens = sum(entry.get("tokens", 0) for entry in window[1:])
    return (tokens / seconds, run) if seconds > 0 and tokens else None


def training_run_preflight(
    *, project: Project, version: DatasetVersion | None, base_model: str, method: str, options: dict[str, Any]
) -> dict[str, Any]:
    """What the lead sees before launching: readiness at the run's max length, the training examples longer than
    it (named: a run cuts them), then the estimates (training_run_estimate)."""
    max_length = run_max_length(project=project, options=options)
    readiness = curation_selectors.readiness(project=project, max_length=max_length)
    failing = [check["id"] for check in readiness["checks"] if not check["passed"]]
    figures = training_run_estimate(
        project=project, version=version, base_model=base_model, method=method, options=options
    )
    over_length = None
    if version is not None:
        over_length = curation_selectors.over_length_examples(
            project=project, max_length=max_length, version=version, split="train"
        )
        if over_length is not None and over_length["count"]:
            figures["warnings"].append(
                quality.over_length_summary(over_length, what=f"training examples of v{version.number}")
                + " The run will cut them at its max length, and leave out any whose answer is cut whole."
            )
    return {
        "readiness": readiness,
        "failing_checks": failing,
        # What the pre-flight shows people: the checks' names, not their ids.
        "failing_names": [check["name"] for check in readiness["checks"] if not check["passed"]],
        "max_length": max_length,
        "over_length": over_length,
        **figures,
    }


def run_max_length(*, project: Project, options: dict[str, Any]) -> int:
    """The max length a run with these options takes: its own, else the project's (training_run_create)."""
    return int(options.get("max_seq_length") or project.max_seq_length)


def training_run_estimate(
    *, project: Project, version: DatasetVersion | None, base_model: str, method: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Trainable share, GPU memory and GPUs, steps and time, and warnings; without a version, no steps or time."""
    from .recipes.config import SFTConfig

    defaults = SFTConfig(base_model=base_model, max_seq_length=run_max_length(project=project, options=options))
    get = lambda name: options.get(name) if options.get(name) not in (None, "") else getattr(defaults, name)  # noqa: E731
    result: dict[str, Any] = {"base_model": base_model, "method": method, "warnings": []}
    try:
        base_model = base_models.base_model_clean(base_model)
    except ServiceError as error:
        result["warnings"].append(f"This run cannot start: {error.message}")
    shape, source = base_model_shape(base_model)
    result["shape_source"] = source
    on_cpu = base_model == TINY_LOCAL
    dtype_bytes = 4 if on_cpu else 2
    result["dtype"] = "float32 (CPU)" if on_cpu else "bfloat16"
    batch, accumulation, seq_len = int(get("batch_size")), int(get("gradient_accumulation")), int(get("max_seq_length"))
    if shape is not None:
        total = shape.total_params()
        trainable = shape.lora_params(int(get("lora_r")), list(get("lora_targets"))) if method == "lora" else total
        result.update(total_params=total, trainable_params=trainable, trainable_share=trainable / total)
        result["trainable_percent"] = f"{100 * trainable / total:.3g}%"
        result["memory"] = estimate.memory(
            shape=shape, method=method, trainable=trainable, dtype_bytes=dtype_bytes, micro_batch=batch, seq_len=seq_len
        )
        if not on_cpu:
            gpus = estimate.gpus_needed(result["memory"]["total"], settings.FINELINE_GPU_MEMORY_GB)
            result["gpus_needed"] = gpus
            result["gpu"] = {"name": settings.FINELINE_GPU_NAME, "memory_gb": settings.FINELINE_GPU_MEMORY_GB}
            if gpus > 1:
                result["warnings"].append(
                    f"About {result['memory']['total']:.0f} GB: more than one {settings.FINELINE_GPU_NAME} "
                    f"({gpus} with sharded weights and optimizer states, or a smaller batch size or sequence length)."
                )
    if version is None:
        result["warnings"].append("Freeze a dataset version first: a run trains on a frozen version.")
        return result
    stats = version_train_stats(version=version)
    result["train_examples"] = stats["examples"]
    result["tokens_per_epoch"] = stats["tokens"]
    per_step = batch * accumulation
    items = stats["examples"]
    if options.get("packing"):
        items = math.ceil(stats["tokens"] / seq_len / 0.95)
    steps_per_epoch = max(1, items // per_step)
    steps = int(get("max_steps") or max(1, math.ceil(float(get("epochs")) * steps_per_epoch)))
    result["steps"] = steps
    tokens = int(stats["tokens"] * steps / steps_per_epoch)
    result["tokens"] = tokens
    measured = measured_tokens_per_second(project=project, base_model=base_model)
    if measured is not None:
        speed, run = measured
        result["seconds"] = tokens / speed
        result["time_basis"] = (
            f"measured: run #{run.pk} trained at {speed:,.0f} tokens/s on {run.device or 'its device'}"
        )
    elif on_cpu:
        speed = settings.FINELINE_CPU_TOKENS_PER_SECOND
        result["seconds"] = tokens / speed
        result["time_basis"] = f"assumed {speed:,.0f} tokens/s on a CPU worker"
    elif shape is not None:
        gpus = result.get("gpus_needed", 1)
        result["seconds"] = estimate.seconds(
            tokens=tokens,
            total_params=shape.total_params(),
            method=method,
            flops=settings.FINELINE_GPU_TFLOPS * 1e12 * gpus,
            mfu=settings.FINELINE_GPU_MFU,
        )
        result["time_basis"] = (
            f"{'6' if method == 'full' else '4'} x params FLOPs per token at {settings.FINELINE_GPU_MFU:.0%} of "
            f"{gpus} x {settings.FINELINE_GPU_NAME} ({settings.FINELINE_GPU_TFLOPS:,.0f} TFLOP/s)"
        )
    if stats["examples"] < per_step:
        result["warnings"].append(
            f"The training split has {stats['examples']} examples, fewer than one step's {per_step}."
        )
    return result


def training_run_eta(*, run: TrainingRun) -> float | None:
    """Seconds left, from the pace of the last logged steps."""
    if run.status != TrainingRun.Status.RUNNING or len(run.metrics) < 2 or not run.total_steps:
        return None
    window = run.metrics[-20:]
    seconds = window[-1].get("elapsed", 0) - window[0].get("elapsed", 0)
    steps = window[-1]["step"] - window[0]["step"]
    if seconds <= 0 or steps <= 0:
        return None
    return (run.total_steps - run.step) * seconds / steps


def training_run_artifact_list(*, run: TrainingRun) -> list[dict[str, str]]:
    """The run's artifacts as pages and the API name them: `name` (what a download asks for), what it is, and where
    it lies: on the server relative to the data folder ($FINELINE_VAR_DIR/runs/run-12/...), or in the store
    (s3://bucket/prefix/runs/run-12/adapter)."""
    return [
        {"name": name, "label": artifacts.NAMES[name], "path": server_paths.redact(where)}
        for name, where in artifacts.run_artifacts(run).items()
    ]


def training_run_list(*, project: Project):
    return TrainingRun.objects.filter(project=project).select_related("project", "dataset_version", "created_by")


SERIES_POINTS = 400


def training_run_series(*, run: TrainingRun) -> dict[str, list]:
    """The curves the run page draws, thinned to at most SERIES_POINTS training points (every validation point
    kept): step, loss, token accuracy, and validation loss and accuracy where they were measured."""
    metrics = run.metrics
    stride = max(1, math.ceil(len(metrics) / SERIES_POINTS))
    chosen = [m for i, m in enumerate(metrics) if i % stride == 0 or i == len(metrics) - 1 or "val_loss" in m]
    return {
        "step": [m["step"] for m in chosen],
        "loss": [m.get("loss") for m in chosen],
        "token_accuracy": [m.get("token_accuracy") for m in chosen],
        "val_loss": [m.get("val_loss") for m in chosen],
        "val_token_accuracy": [m.get("val_token_accuracy") for m in chosen],
    }


CHAT_EXAMPLES = 50  # test examples offered to pick a chat message from


def chat_test_examples(*, run: TrainingRun, limit: int = CHAT_EXAMPLES) -> list[dict[str, Any]]:
    """The first test examples of the run's dataset version, as a chat offers them: the item's id, its last user
    turn (the message to send) and its reference answer."""
    items = run.dataset_version.items.filter(split="test").order_by("id").values_list("id", "messages")[:limit]
    examples = []
    for item_id, messages in items:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
        users = [m["content"] for m in messages[:last] if m["role"] == "user"]
        if users:
            reference = messages[last]["content"] if last < len(messages) else ""
            examples.append({"id": item_id, "message": users[-1], "reference": reference})
    return examples


def _chat_lost(reply: ChatReply) -> str:
    """Why a chat still queued or running will not be answered, read from its age ("" while it may still be): no
    worker took it within a chat's time limit, or its worker was lost past that limit and its grace. Nothing is
    written: a worker that answers after all still ends the row `succeeded`, and the next read shows it."""
    limit = settings.FINELINE_CHAT_SOFT_TIME_LIMIT
    age = (timezone.now() - (reply.started_at or reply.created_at)).total_seconds()
    if reply.status == ChatReply.Status.QUEUED and age > limit:
        return f"no worker on the `chat` queue took it within {limit:.0f} s: is one running? Send it again."
    if reply.status == ChatReply.Status.RUNNING and age > limit + settings.FINELINE_TASK_TIME_LIMIT_GRACE:
        return "its worker was lost before it answered (killed, or cut off from the database). Send it again."
    return ""


def chat_reply_data(*, reply: ChatReply) -> dict[str, Any]:
    """A chat as the API and the page show it: each system's answer (None for the base when it was not asked), the
    weights that answered, the status and any error (the server's folders named, not spelled out)."""
    answers = reply.answers or {}
    systems = ("fine_tuned", "base") if reply.compare_base else ("fine_tuned",)
    status, error = reply.status, reply.error
    if status in ChatReply.ACTIVE and (lost := _chat_lost(reply)):
        status, error = ChatReply.Status.FAILED, lost
    return {
        "id": reply.pk,
        "status": status,
        "weights": reply.weights,
        "messages": reply.messages,
        "fine_tuned": answers.get("fine_tuned"),
        "base": answers.get("base"),
        "error": server_paths.redact(error),
        "systems": [(name, answers.get(name) or {}) for name in systems],
        "created_at": reply.created_at,
        "finished_at": reply.finished_at,
    }
