"""Paths on the server, as users may name and see them.

A model (a run's base model, a project's tokenizer) comes from the administrator's list (FINELINE_BASE_MODELS), a
Hugging Face id, or a folder under FINELINE_MODELS_DIR, named by its absolute path. The folder is resolved (`..` and
symbolic links followed) before it is judged, and nothing inside FINELINE_VAR_DIR is ever a model: the runs' adapters
and merged weights, tiny-local's builds (trained on a project's own texts), uploads and the database live there, and
run ids are global, so another project's artifacts would be one guess away.

Pages and API answers show server paths relative to the folders an operator knows: `$FINELINE_VAR_DIR/runs/run-12/...`
(`redact`), never the absolute path.

It lives here rather than in training/ because curation (a project's tokenizer) needs the same rule, and curation
does not import training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

# A Hugging Face repository id: `name` or `owner/name`, letters, digits, `-`, `_` and `.` (no `..`), 96 each at most.
HUB_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,95})(?:/[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,95}))?")
MAX_LENGTH = 300


class ModelSourceError(ValueError):
    """A model name that may not be loaded here; the message says what is allowed."""


def var_dir() -> Path:
    return Path(settings.VAR_DIR).resolve()


def models_dir() -> Path | None:
    """The administrator's folder of local models, resolved; None when local folders are not offered."""
    folder = str(settings.FINELINE_MODELS_DIR or "").strip()
    return Path(folder).expanduser().resolve() if folder else None


def model_source_check(value: str) -> str:
    """What to load for `value`, or ModelSourceError: a listed model as it is listed, a Hugging Face id as it is, a
    local folder resolved. The same message answers for a folder outside the models folder whether it exists or not:
    the check reveals nothing about the rest of the disk."""
    value = (value or "").strip()
    if not value:
        raise ModelSourceError("name a model.")
    if len(value) > MAX_LENGTH:
        raise ModelSourceError(f"a model name is at most {MAX_LENGTH} characters.")
    if value in settings.FINELINE_BASE_MODELS:
        return value
    if value.startswith(("/", "~")) or "\\" in value:
        return str(_folder_check(value))
    if ".." in value or not HUB_ID.fullmatch(value):
        raise ModelSourceError(
            f"{redact(value)!r} is neither a listed model, a Hugging Face id (owner/name) nor the absolute path of a "
            "folder under the models folder."
        )
    # transformers loads a local folder before the Hub when one has this name (relative to the worker's directory)
    if os.path.lexists(value):
        raise ModelSourceError(f"{redact(value)!r} names a path on the server, not a Hugging Face id.")
    return value


def _folder_check(value: str) -> Path:
    root = models_dir()
    if root is None:
        raise ModelSourceError(
            "local folders are not offered here: use a listed model or a Hugging Face id (an administrator sets "
            "FINELINE_MODELS_DIR to offer the folders under it)."
        )
    outside = ModelSourceError(f"{redact(value)!r} is not a folder under the models folder ($FINELINE_MODELS_DIR).")
    if value.startswith("~"):
        raise outside
    try:
        folder = Path(value).resolve()
    except (OSError, RuntimeError, ValueError):  # a symbolic-link loop, a NUL character
        raise outside from None
    if folder == root or not folder.is_relative_to(root):
        raise outside
    if folder.is_relative_to(var_dir()):
        raise ModelSourceError(
            f"{redact(value)!r} is inside Fineline's data folder (runs, built models, uploads): never a model source."
        )
    if not folder.is_dir():
        raise outside
    return folder


def model_folder(value: str) -> Path | None:
    """The local folder `value` names when it may be read (listed, or under the models folder); None otherwise, and
    for a Hugging Face id."""
    try:
        checked = Path(model_source_check(value))
    except ModelSourceError:
        return None
    return checked if checked.is_absolute() and checked.is_dir() else None


def _roots() -> list[tuple[re.Pattern, str]]:
    roots: dict[str, str] = {}
    for setting, label in (("VAR_DIR", "$FINELINE_VAR_DIR"), ("FINELINE_MODELS_DIR", "$FINELINE_MODELS_DIR")):
        value = str(getattr(settings, setting, "") or "").strip()
        if not value:
            continue
        for form in {str(Path(value).expanduser()), str(Path(value).expanduser().resolve())}:
            if len(form) > 1:
                roots.setdefault(form.rstrip("/"), label)
    # the longest first: a models folder inside the data folder keeps its own name
    return [
        (re.compile(re.escape(root) + r"(?![\w.-])"), label)
        for root, label in sorted(roots.items(), key=lambda item: -len(item[0]))
    ]


def redact(text: str) -> str:
    """`text` with the data folder and the models folder named as $FINELINE_VAR_DIR and $FINELINE_MODELS_DIR."""
    if not text:
        return text
    for pattern, label in _roots():
        text = pattern.sub(label, text)
    return text


def redact_all(value):
    """`redact` through the strings of a JSON value (a run's deployment bundle, an evaluation's results)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_all(item) for item in value]
    return value
