"""Writes to training runs: launch (behind the readiness verdict), execute on a worker, cancel."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core import leases, server_paths
from core.errors import ServiceError
from curation import formats
from curation import selectors as curation_selectors
from curation import services as curation_services
from curation.models import DatasetVersion, Project

from . import artifacts, base_models
from .models import ChatReply, TrainingRun
from .recipes import tiny_local
from .recipes.config import OPTIONS

TINY_LOCAL = tiny_local.NAME
logger = logging.getLogger(__name__)
METRICS_KEPT = 5000


# What a run's stored config gives the recipe: every option, and the method (the base model is checked apart).
RECIPE_FIELDS = frozenset({*OPTIONS, "method"})


def training_options_clean(options: dict[str, Any]) -> dict[str, Any]:
    """Check each recipe setting's name, type and range (as SFTConfig declares them, `recipes.config.OPTIONS`); a bad
    one is a clear error naming the field."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ServiceError(f"unknown training option(s): {', '.join(sorted(unknown))}.", field="options")
    clean: dict[str, Any] = {}
    for name, value in options.items():
        option = OPTIONS[name]
        kind, low, high = option.kind, option.min, option.max
        if option.nullable and value is None:
            clean[name] = None
            continue
        if kind is list:
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",")]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise ServiceError(f"`{name}` must be a non-empty list of module names.", field=name)
            clean[name] = [v.strip() for v in value]
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise ServiceError(f"`{name}` must be true or false.", field=name)
            clean[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise ServiceError(f"`{name}` must be {'a whole number' if kind is int else 'a number'}.", field=name)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ServiceError(f"`{name}` must be between {low:g} and {high:g}.", field=name)
        clean[name] = kind(value)
    return clean


def training_run_create(
    *,
    project: Project,
    user: AbstractBaseUser,
    dataset_version: DatasetVersion,
    base_model: str = TINY_LOCAL,
    method: str = "lora",
    options: dict[str, Any] | None = None,
    override_readiness: str = "",
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a fine-tune. A project that is not ready needs the lead's written reason, kept on the run.

    `enqueue=False` leaves it for the caller to run in its own process (`train --inline`): no worker may claim it.
    """
    if dataset_version.project_id != project.pk:
        raise ServiceError("that dataset version belongs to another project.", field="dataset_version")
    if method not in ("lora", "full"):
        raise ServiceError("`method` must be lora or full.", field="method")
    base_model = base_models.base_model_clean(base_model)
    options = training_options_clean(dict(options or {}))
    # A run takes the project's max length unless told otherwise: the length readiness and the dashboard judge by.
    options.setdefault("max_seq_length", project.max_seq_length)
    verdict = curation_selectors.readiness(project=project, max_length=options["max_seq_length"])
    if not verdict["ready"] and not override_readiness.strip():
        failing = ", ".join(check["name"].lower() for check in verdict["checks"] if not check["passed"])
        raise ServiceError(
            f"the data is not ready ({failing}); give a written reason to train anyway.", field="override_readiness"
        )
    run = TrainingRun.objects.create(
        project=project,
        dataset_version=dataset_version,
        created_by=user,
        base_model=base_model,
        method=method,
        config={**options, "method": method},
        readiness_override=override_readiness.strip(),
    )
    if enqueue:
        _enqueue(run.pk)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step (the worker frees the GPU)."""
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
    )
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        status=TrainingRun.Status.CANCELLING
    )
    run.refresh_from_db()
    return run


def training_runs_recover() -> int:
    """Requeue the runs whose worker died (lease expired): they resume from their last complete checkpoint.

    A run that has already been started `FINELINE_RUN_MAX_ATTEMPTS` times is marked failed instead of looping; a
    run whose worker died while cancelling is cancelled. Runs from the periodic task and at each worker's start.
    Returns how many runs were requeued.
    """
    return leases.recover_expired(
        TrainingRun,
        statuses=[TrainingRun.Status.RUNNING, TrainingRun.Status.CANCELLING],
        outcome=_lost_run_outcome,
        enqueue=_enqueue,
        fields=["attempts", "log"],
    )


def _lost_run_outcome(run: TrainingRun, now: datetime) -> dict[str, Any]:
    if run.status == TrainingRun.Status.CANCELLING:
        return leases.finished(TrainingRun.Status.CANCELLED, finished_at=now)
    if run.attempts >= settings.FINELINE_RUN_MAX_ATTEMPTS:
        return leases.finished(
            TrainingRun.Status.FAILED,
            error=f"the worker was lost {run.attempts} times; gave up instead of retrying again.",
            finished_at=now,
        )
    line = f"worker lost at {now:%Y-%m-%d %H:%M:%S}; requeued to resume from the last checkpoint\n"
    return leases.requeued(TrainingRun, log=leases.log_kept(run.log + line))


def _enqueue(run_id: int) -> None:
    from .tasks import training_run_task

    transaction.on_commit(lambda: training_run_task.apply_async(args=[run_id], queue="gpu"))


def _free_gpu_memory() -> None:
    """Give the run's GPU memory back to the device (the worker process lives on for the next job)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_processes() -> int:
    """Training processes on this node: one per GPU by default ("auto"), or FINELINE_TRAIN_PROCESSES."""
    value = str(settings.FINELINE_TRAIN_PROCESSES).strip().lower()
    if value == "auto":
        import torch

        return max(1, torch.cuda.device_count())
    return max(1, int(value))


runs_dir = artifacts.runs_dir


def base_model_path(run: TrainingRun, train_rows: list[dict], on_log=None) -> str:
    """The run's base model, checked again (the row may predate the check, or have been edited); tiny-local is built
    here (or found in the cache), its stages reported to `on_log`."""
    if run.base_model != TINY_LOCAL:
        return base_models.base_model_clean(run.base_model)
    report = on_log or (lambda entry: None)
    report({"event": "build", "stage": "sampling the base's pretraining corpus"})
    documents = tiny_local.corpus_documents(row["messages"] for row in train_rows)
    cache = base_models.tiny_local_cache()
    name = tiny_local.build_name(documents)
    if not (cache / name / "COMPLETE").exists() and artifacts.tiny_local_fetch(name, cache) is not None:
        # Another node built it (a resume elsewhere must train on the very same base).
        report({"event": "build", "stage": "base model fetched from the artifact store"})
        return str(cache / name)
    built = tiny_local.build(documents, cache, on_log=on_log)
    artifacts.tiny_local_publish(built)
    return str(built)


def _failure(error: Exception) -> str:
    """What a run keeps of an exception: its type and message, with the server's folders named, not spelled out."""
    message = error.message if isinstance(error, ServiceError) else f"{type(error).__name__}: {error}"
    return server_paths.redact(message)


def _truncation_line(truncation: dict) -> str:
    """'8 of 322 training examples were longer than 1024 tokens and were cut (3 lost their whole answer and were left
    out): #12, #40...'"""
    named = ", ".join(f"#{example_id}" for example_id in truncation["truncated_ids"])
    more = " ..." if truncation["truncated"] > len(truncation["truncated_ids"]) else ""
    dropped = f" ({truncation['dropped']:,} lost their whole answer and were left out)" if truncation["dropped"] else ""
    return (
        f"{truncation['truncated']:,} of {truncation['examples']:,} training examples were longer than "
        f"{truncation['max_seq_length']:,} tokens and were cut{dropped}: {named}{more}"
    )


def training_run_execute(*, run_id: int, worker: str | None = None) -> TrainingRun | None:
    """Run the fine-tune on this worker (resuming from its last complete checkpoint); None if another holds it, or
    took it over meanwhile (this worker was cut off past its lease: it stops at its next write)."""
    from .recipes import sft

    worker = worker or leases.worker_name()
    if not leases.claim(TrainingRun, run_id, worker):
        return None
    run = TrainingRun.objects.select_related("dataset_version", "project").get(pk=run_id)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=run.attempts + 1)
    items = run.dataset_version.items.order_by("id").values_list("split", "messages", "label", "example_id")
    rows = {"train": [], "val": []}
    for split, messages, label, example_id in items.iterator(2000):
        if split in rows:  # the example's id names it when the recipe reports it truncated
            rows[split].append({"messages": messages, "label": label, "id": example_id})
    out_dir = artifacts.run_folder(run.pk)
    state = {"metrics": list(run.metrics), "log": run.log, "summary": dict(run.summary)}

    def on_log(entry: dict) -> None:
        changes: dict[str, Any] = {}
        if entry["event"] == "build":
            # Before the first step: building the base, tokenizing the examples. The page shows the stage.
            changes.update(stage=entry["stage"], stage_step=entry.get("step", 0), stage_total=entry.get("total", 0))
            line = entry["stage"]
            if entry.get("total"):
                line += f" {entry['step']}/{entry['total']}"
            if "loss" in entry:
                line += f" loss {entry['loss']}"
            if "characters" in entry:
                line += f" ({entry['documents']:,} documents, {entry['characters']:,} characters)"
            state["log"] += f"{line} ({entry['elapsed']:.0f} s)\n" if "elapsed" in entry else f"{line}\n"
        elif entry["event"] == "start":
            # a resumed run repeats the steps after its checkpoint: the series keeps one entry per step
            state["metrics"] = [m for m in state["metrics"] if m["step"] <= entry["step"]]
            changes["metrics"] = state["metrics"]
            changes.update(
                trainable_params=entry["trainable_params"],
                total_params=entry["total_params"],
                device=entry["device"],
                total_steps=entry["total"],
                step=entry["step"],
                stage="",
                stage_step=0,
                stage_total=0,
            )
            truncation = entry.get("truncation")
            if truncation is not None:
                state["summary"]["truncation"] = truncation
                changes["summary"] = state["summary"]
                if truncation["truncated"]:
                    state["log"] += _truncation_line(truncation) + "\n"
            resumed = f", resumed from {entry['resumed_from']}" if entry.get("resumed_from") else ""
            where = (
                f"{entry['processes']} processes on {entry['device']}"
                if entry.get("processes", 1) > 1
                else entry["device"]
            )
            state["log"] += f"start at step {entry['step']} on {where} ({entry['dtype']}){resumed}\n"
        elif entry["event"] == "checkpoint":
            # The recipe wrote it whole: into the store before the run goes on, so any node can resume from it.
            folder = out_dir / "checkpoints" / f"step-{int(entry['step'])}"
            if not (folder / "COMPLETE").is_file():
                return  # a multi-process run may have pruned it already: a newer one follows
            leases.ensure_held(TrainingRun, run.pk, worker)  # the store's checkpoints are the holder's
            keep = int(run.config.get("keep_checkpoints") or sft.SFTConfig.keep_checkpoints)
            sent = artifacts.checkpoint_publish(run.pk, folder, keep=keep)
            state["log"] += f"checkpoint step-{entry['step']} stored ({sent:,} bytes)\n"
        elif entry["event"] == "step":
            state["metrics"] = (state["metrics"] + [entry])[-METRICS_KEPT:]
            changes.update(step=entry["step"], total_steps=entry["total"], metrics=state["metrics"])
            line = f"step {entry['step']}/{entry['total']} loss {entry['loss']}"
            if "val_loss" in entry:
                line += f" val_loss {entry['val_loss']}"
            state["log"] += line + "\n"
        changes["log"] = leases.log_kept(state["log"])
        leases.write(TrainingRun, run.pk, worker, **changes)  # LeaseLost (the run stops) once another holds it

    def should_stop() -> bool:
        return TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.CANCELLING).exists()

    heartbeat = leases.Heartbeat(TrainingRun, run.pk, worker)
    heartbeat.start()
    try:
        base = base_model_path(run, rows["train"], on_log=on_log)
        if run.base_model == TINY_LOCAL:  # a chat with a checkpoint loads the very same build (base_models)
            state["summary"]["tiny_local_build"] = Path(base).name
            leases.write(TrainingRun, run.pk, worker, summary=state["summary"])
        fetched = artifacts.checkpoint_restore(run.pk, out_dir)
        if fetched:
            state["log"] += f"checkpoint {fetched} fetched from the artifact store\n"
        options = {key: value for key, value in run.config.items() if key in RECIPE_FIELDS}
        if "lora_targets" in options:
            options["lora_targets"] = tuple(options["lora_targets"])
        config = sft.SFTConfig(base_model=base, **options)
        processes = train_processes()
        if processes > 1:
            result = sft.run_distributed(
                config, rows["train"], rows["val"], out_dir, processes, on_log=on_log, should_stop=should_stop
            )
        else:
            result = sft.run(config, rows["train"], rows["val"], out_dir, on_log=on_log, should_stop=should_stop)
        final_dir = result.adapter_dir or result.model_dir
        if not result.cancelled and final_dir is not None:
            leases.ensure_held(TrainingRun, run.pk, worker)
            sent = artifacts.publish(run.pk, "adapter" if result.adapter_dir else "model", final_dir)
            state["log"] += f"{final_dir.name} stored ({sent:,} bytes)\n"
            leases.write(TrainingRun, run.pk, worker, log=leases.log_kept(state["log"]))
    except leases.LeaseLost:
        # Cut off long enough for the run to be handed to another worker, which now owns it: stop, write nothing.
        logger.warning("run #%s was taken over by another worker; this one stops", run.pk)
        return None
    except Exception as error:
        failed = leases.finished(TrainingRun.Status.FAILED, error=_failure(error))
        leases.held(TrainingRun, run.pk, worker).update(**failed)
        raise
    finally:
        heartbeat.stopped.set()
        _free_gpu_memory()
    final = TrainingRun.Status.CANCELLED if result.cancelled else TrainingRun.Status.SUCCEEDED
    deployment = {}
    if not result.cancelled:
        from . import bundle

        deployment = bundle.write(
            out_dir=out_dir,
            base_model=run.base_model if run.base_model != TINY_LOCAL else base,
            adapter_dir=result.adapter_dir,
            name=f"{run.project.slug}-run{run.pk}",
            max_model_len=config.max_seq_length,
            system_prompt=run.project.system_prompt,
        )
        if result.model_dir is not None:  # a full fine-tune serves its own folder
            deployment["vllm_command"] = bundle.vllm_command(
                base_model=str(result.model_dir),
                adapter_dir=None,
                name="",
                max_model_len=config.max_seq_length,
                merged_dir=result.model_dir,
            )
    if not result.cancelled and not run.project.tokenizer:
        # The project's token lengths are estimates until a base model's tokenizer exists: now one does.
        curation_services.project_tokenizer_adopt(project=run.project, tokenizer=base)
    if not leases.held(TrainingRun, run.pk, worker).update(
        **leases.finished(final),
        output_dir=str(out_dir),
        adapter_dir=str(result.adapter_dir or result.model_dir or ""),
        deployment=deployment,
    ):
        return None  # taken over at the last moment: the new holder finishes it
    run.refresh_from_db()
    return run


def training_run_merge_request(*, run: TrainingRun) -> TrainingRun:
    """Ask a worker on the `gpu` queue to merge a finished run's LoRA adapter into its base model."""
    if run.status != TrainingRun.Status.SUCCEEDED or run.method != "lora" or not run.adapter_dir:
        raise ServiceError("only a finished LoRA run has an adapter to merge.", field="run")
    if TrainingRun.objects.filter(pk=run.pk, merge_status__in=["", "failed"]).update(merge_status="queued"):
        from .tasks import training_run_merge_task

        transaction.on_commit(lambda: training_run_merge_task.apply_async(args=[run.pk], queue="gpu"))
    run.refresh_from_db()
    return run


def training_run_merge_execute(*, run_id: int) -> TrainingRun | None:
    """Merge the adapter (the base model is the one named in the adapter's config) and add the merged bundle."""
    from . import bundle
    from .recipes import sft

    if not TrainingRun.objects.filter(pk=run_id, merge_status="queued").update(merge_status="running"):
        return None
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    try:
        adapter = artifacts.run_artifact(run, "adapter")
        if adapter is None:
            raise ServiceError(f"run #{run.pk} has no adapter in its own folder.", field="run")
        merged = sft.merge_adapter(adapter, artifacts.run_folder(run.pk) / "merged", base_models.trained_base(run))
        artifacts.publish(run.pk, "merged", merged)
    except Exception as error:
        TrainingRun.objects.filter(pk=run.pk).update(
            merge_status="failed", log=leases.log_kept(run.log + f"merge failed: {_failure(error)}\n")
        )
        raise
    deployment = bundle.write_merged(
        out_dir=artifacts.run_folder(run.pk),
        merged_dir=merged,
        max_model_len=int(run.config.get("max_seq_length") or sft.SFTConfig.max_seq_length),
        system_prompt=run.project.system_prompt,
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        merge_status="done", merged_dir=str(merged), deployment={**run.deployment, **deployment}
    )
    run.refresh_from_db()
    return run


# "Try the model": a chat with a run's weights, the base model's answer beside it.
CHAT_ROLES = ("system", "user", "assistant")
CHAT_MAX_MESSAGES = 50
CHAT_SYSTEMS = ("fine_tuned", "base")
CHAT_WRITE_EVERY = 0.1  # seconds between writes of a streaming answer to its row (what the page polls)


def chat_messages_clean(messages: Any) -> list[dict[str, str]]:
    """The conversation to answer, checked: a list of {role, content} ending with the user's turn; a ServiceError on
    `messages` naming the first problem. A system message is kept but the worker replaces it with the project's
    system prompt, as the fine-tune was trained and the evaluation asks."""
    if not isinstance(messages, list) or not messages:
        raise ServiceError("`messages` must be a non-empty list of {role, content} objects.", field="messages")
    if len(messages) > CHAT_MAX_MESSAGES:
        raise ServiceError(f"at most {CHAT_MAX_MESSAGES} messages, not {len(messages)}.", field="messages")
    total = 0
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ServiceError(f"message {number} must be an object with `role` and `content` only.", field="messages")
        role, content = message["role"], message["content"]
        if role not in CHAT_ROLES:
            allowed = ", ".join(CHAT_ROLES)
            raise ServiceError(f"message {number} has role {role!r}; allowed: {allowed}.", field="messages")
        if not isinstance(content, str) or not content.strip():
            raise ServiceError(f"message {number} ({role}) needs a non-empty `content` string.", field="messages")
        if "\x00" in content:
            raise ServiceError(f"message {number} ({role}) contains a NUL character (\\u0000).", field="messages")
        total += len(content)
    if messages[-1]["role"] != "user":
        raise ServiceError("the last message must be the user's: the model answers it.", field="messages")
    if total > settings.FINELINE_CHAT_MAX_CHARS:
        raise ServiceError(
            f"the conversation has {total:,} characters, over the limit of {settings.FINELINE_CHAT_MAX_CHARS:,}.",
            field="messages",
        )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def chat_reply_create(
    *, run: TrainingRun, user: AbstractBaseUser | None, messages: Any, compare_base: bool = True
) -> ChatReply:
    """Queue a chat with the run (its final weights, or its latest complete checkpoint while it trains) on the `chat`
    queue; a ServiceError when the conversation is not valid or the run has nothing to answer with yet."""
    messages = chat_messages_clean(messages)
    weights = artifacts.chat_weights(run)
    if weights is None:
        raise ServiceError(
            f"run #{run.pk} has no complete checkpoint yet: try again after its first checkpoint "
            f"(every {run.config.get('checkpoint_every', 'few')} steps) or when it finishes.",
            field="training_run",
        )
    reply = ChatReply.objects.create(
        run=run, created_by=user, messages=messages, compare_base=bool(compare_base), weights=weights
    )
    from .tasks import chat_reply_task

    transaction.on_commit(lambda: chat_reply_task.apply_async(args=[reply.pk], queue="chat"))
    return reply


def _recipe_config(run: TrainingRun, base: str):
    from .recipes import sft

    options = {key: value for key, value in run.config.items() if key in RECIPE_FIELDS}
    if "lora_targets" in options:
        options["lora_targets"] = tuple(options["lora_targets"])
    return sft.SFTConfig(base_model=base, **options)


def _chat_models(run: TrainingRun, weights: str):
    """(model, tokenizer, base model or None): the run's weights `weights` loaded, kept by this worker for the next
    chat; the base beside them is the same model with its adapter off (LoRA), or loaded apart (a full fine-tune)."""
    from .recipes import chat, sft

    if weights == "final":
        base = base_models.trained_base(run)
        folder = artifacts.run_artifact(run, "adapter" if run.method == "lora" else "model")
        if folder is None:
            raise ServiceError(f"run #{run.pk} has no {run.method} weights to load.")
        if run.method == "lora":
            model, tokenizer = chat.cached(("lora", base, str(folder)), lambda: sft.load_for_inference(base, folder))
        else:
            model, tokenizer = chat.cached(("full", str(folder)), lambda: sft.load_for_inference(str(folder)))
    else:
        base = base_models.checkpoint_base(run)
        folder = artifacts.checkpoint_folder(run, weights)
        if folder is None:
            raise ServiceError(f"run #{run.pk}'s checkpoint {weights} is gone (a newer one replaced it): send again.")
        config = _recipe_config(run, base)
        model, tokenizer = chat.cached(("checkpoint", run.pk, weights), lambda: chat.load_checkpoint(config, folder))
    return model, tokenizer, base


def chat_reply_execute(*, reply_id: int) -> ChatReply | None:
    """Answer the chat on this worker: the fine-tune first, then the base model, each streamed into the row (every
    CHAT_WRITE_EVERY seconds) and checked against the project's output format. None when another worker took it."""
    from .recipes import chat

    claimed = ChatReply.objects.filter(pk=reply_id, status=ChatReply.Status.QUEUED).update(
        status=ChatReply.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    reply = ChatReply.objects.select_related("run__project").get(pk=reply_id)
    run, project = reply.run, reply.run.project
    answers: dict[str, dict] = {}
    try:
        model, tokenizer, base = _chat_models(run, reply.weights)
        system = [{"role": "system", "content": project.system_prompt}] if project.system_prompt else []
        conversation = system + [m for m in reply.messages if m["role"] != "system"]
        fits = formats.answer_checker(project.output_format)
        limit = int(run.config.get("max_seq_length") or 0) or None
        for name in CHAT_SYSTEMS if reply.compare_base else CHAT_SYSTEMS[:1]:
            answers[name] = {"content": "", "format_ok": None, "first_token_ms": None, "latency_ms": None}
            written = [0.0]

            def on_text(text: str, name: str = name, written: list = written) -> None:
                answers[name]["content"] = text
                if time.monotonic() - written[0] >= CHAT_WRITE_EVERY:
                    written[0] = time.monotonic()
                    ChatReply.objects.filter(pk=reply.pk).update(answers=answers)

            if name == "base" and run.method == "lora":
                with chat.base_of(model):
                    out = chat.answer(model, tokenizer, conversation, **_chat_options(limit, on_text))
            elif name == "base":
                base_model, base_tokenizer = chat.cached(("base", base), lambda: _base_load(base))
                out = chat.answer(base_model, base_tokenizer, conversation, **_chat_options(limit, on_text))
            else:
                out = chat.answer(model, tokenizer, conversation, **_chat_options(limit, on_text))
            ok = fits(out.content) if fits else None
            problems = formats.answer_violations(project.output_format, out.content)[:3] if ok is False else []
            answers[name] = {
                "content": out.content,
                "format_ok": ok,
                "format_problems": problems,
                "first_token_ms": round(out.first_token_ms, 1) if out.first_token_ms is not None else None,
                "latency_ms": round(out.latency_ms, 1),
                "new_tokens": out.new_tokens,
                "prompt_truncated": out.prompt_truncated,
            }
            ChatReply.objects.filter(pk=reply.pk).update(answers=answers)
    except Exception as error:  # a time limit included: the chat ends failed, saying why
        ChatReply.objects.filter(pk=reply.pk).update(
            status=ChatReply.Status.FAILED, answers=answers, error=_failure(error), finished_at=timezone.now()
        )
        if not isinstance(error, ServiceError):
            raise
        return None
    ChatReply.objects.filter(pk=reply.pk).update(
        status=ChatReply.Status.SUCCEEDED, answers=answers, finished_at=timezone.now()
    )
    reply.refresh_from_db()
    return reply


def _base_load(base: str):
    from .recipes import sft

    return sft.load_for_inference(base)


def _chat_options(limit: int | None, on_text) -> dict[str, Any]:
    return {"max_new_tokens": settings.FINELINE_CHAT_MAX_NEW_TOKENS, "max_prompt_tokens": limit, "on_text": on_text}
