"""Which base model a run may start from, checked in one place: the launch form, the API, the `train` command, the
pre-flight, the worker (again at run time: a row written before the check, or edited in the database, loads
nothing else), the merge and the evaluation.

Allowed: tiny-local, the administrator's list (FINELINE_BASE_MODELS), a Hugging Face id, or a folder under
FINELINE_MODELS_DIR; never anything inside FINELINE_VAR_DIR (another project's adapters, merged weights or tiny-local
builds). The rule itself is core.server_paths.model_source_check.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from core import server_paths
from core.errors import ServiceError

from . import artifacts
from .models import TrainingRun
from .recipes import tiny_local

TINY_LOCAL = tiny_local.NAME


def base_model_choices() -> list[str]:
    return list(settings.FINELINE_BASE_MODELS)


def base_model_clean(value: str) -> str:
    """The base model to store and load (a folder resolved); a ServiceError on `base_model` when it is not allowed."""
    value = (value or "").strip() or TINY_LOCAL
    if value == TINY_LOCAL:
        return value
    try:
        return server_paths.model_source_check(value)
    except server_paths.ModelSourceError as error:
        raise ServiceError(f"base model: {error}", field="base_model") from None


def base_model_config(value: str) -> dict | None:
    """The model's config.json, read from an allowed folder or the Hugging Face cache, never from the network; None
    for a model that is not allowed (its folder is not read at all) or not found."""
    folder = server_paths.model_folder(value)
    if folder is not None:
        config = folder / "config.json"
        return json.loads(config.read_text()) if config.is_file() else None
    try:
        server_paths.model_source_check(value)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(value, "config.json")
    except Exception:  # not allowed, or not a valid repository id
        return None
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else None


def tiny_local_cache() -> Path:
    """Where the worker builds tiny-local, one folder per corpus (each trained on one project's texts)."""
    return Path(settings.VAR_DIR) / "models"


def trained_base(run: TrainingRun) -> str:
    """The base model a finished run trained from, to load again (evaluation, merge): the run's base model, checked
    again; for tiny-local, the build the worker recorded beside the run's own weights, taken by its name only
    (tiny-local-<hash>) from this node's tiny-local cache or the store (or a model the rule allows)."""
    if run.base_model != TINY_LOCAL:
        return base_model_clean(run.base_model)
    folder = artifacts.run_artifact(run, "adapter" if run.method == "lora" else "model")
    recorded = folder / "fineline_config.json" if folder is not None else None
    if recorded is None or not recorded.is_file():
        raise ServiceError(f"run #{run.pk} has no record of the tiny-local base it trained from.", field="training_run")
    value = str(json.loads(recorded.read_text()).get("base_model", ""))
    built = Path(value).resolve()
    if built.parent == tiny_local_cache().resolve() and built.name.startswith(f"{TINY_LOCAL}-"):
        return str(built)  # built on this node
    if built.parent.name == "models" and artifacts.TINY_BUILD.fullmatch(built.name):
        # The build is named by its content: this node's cache, or the store's copy from the node that built it.
        found = artifacts.tiny_local_fetch(built.name, tiny_local_cache())
        if found is None:
            raise ServiceError(f"run #{run.pk}'s tiny-local base ({built.name}) is in no cache nor the store.")
        return str(found)
    return base_model_clean(value)


def checkpoint_base(run: TrainingRun) -> str:
    """The base model a run trains from, to load under one of its checkpoints while it still trains: the run's base
    model, checked again; for tiny-local, the build the worker recorded in the run's summary when it started (by name,
    from this node's cache or the store)."""
    if run.base_model != TINY_LOCAL:
        return base_model_clean(run.base_model)
    name = str(run.summary.get("tiny_local_build", ""))
    found = artifacts.tiny_local_fetch(name, tiny_local_cache()) if name else None
    if found is None:
        raise ServiceError(f"run #{run.pk}'s tiny-local base is in no cache nor the store.", field="training_run")
    return str(found)
