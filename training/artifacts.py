"""A run's files, addressed by run and name (`adapter`, `model`, `merged`), never by a path a user gives.

Each run writes under `FINELINE_VAR_DIR/runs/run-<id>/`; an artifact is served only when its folder lies inside its
own run's folder (resolved), so a row edited to point elsewhere serves nothing. Downloads are tar streams, written
as they are read: a merged model of many gigabytes never sits in memory.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from .models import TrainingRun

CHUNK = 1024 * 1024
NAMES = {
    "adapter": "LoRA adapter (safetensors)",
    "model": "Model (safetensors)",
    "merged": "Merged weights (safetensors)",
}


def runs_dir() -> Path:
    return Path(settings.VAR_DIR) / "runs"


def run_folder(run_id: int) -> Path:
    return runs_dir() / f"run-{run_id}"


def _inside_run(run: TrainingRun, value: str) -> Path | None:
    if not value:
        return None
    folder = Path(value).resolve()
    own = run_folder(run.pk).resolve()
    return folder if folder.is_relative_to(own) and folder != own and folder.is_dir() else None


def run_artifact(run: TrainingRun, name: str) -> Path | None:
    """The folder of the run's artifact `name`, or None when it has none (or its row points outside its folder)."""
    if name == "adapter" and run.method == "lora":
        return _inside_run(run, run.adapter_dir)
    if name == "model" and run.method == "full":
        return _inside_run(run, run.adapter_dir)
    if name == "merged" and run.merge_status == "done":
        return _inside_run(run, run.merged_dir)
    return None


def run_artifacts(run: TrainingRun) -> dict[str, Path]:
    """The run's artifacts that exist, by name."""
    if run.status != TrainingRun.Status.SUCCEEDED:
        return {}
    found = {name: run_artifact(run, name) for name in NAMES}
    return {name: folder for name, folder in found.items() if folder is not None}


def tar_stream(folder: Path, top: str) -> Iterator[bytes]:
    """The regular files under `folder` as an uncompressed tar whose entries sit under `top/` (safetensors do not
    compress); symbolic links are left out."""
    now = int(time.time())
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        info = tarfile.TarInfo(f"{top}/{path.relative_to(folder).as_posix()}")
        info.size, info.mtime, info.mode = path.stat().st_size, now, 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        with path.open("rb") as source:
            while written < info.size and (chunk := source.read(min(CHUNK, info.size - written))):
                written += len(chunk)
                yield chunk
        yield b"\0" * (info.size - written)  # a file that shrank meanwhile keeps the size its header announced
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
