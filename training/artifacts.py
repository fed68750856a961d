"""A run's files, addressed by run and name (`adapter`, `model`, `merged`), never by a path a user gives.

A worker writes a run under its own `FINELINE_VAR_DIR/runs/run-<id>/` and publishes each complete checkpoint and the
final adapter (or model) and merged weights to the artifact store (core/store.py), under `runs/run-<id>/...`; the
tiny-local base it built goes to `models/tiny-local-<hash>`. Any node then reads them from there: a resume on another
node fetches the last complete checkpoint, an evaluation or a merge fetches the adapter and base into the node's
cache, a download streams from the store. The worker's own folder is only a shortcut on the node that wrote it, taken
when the run's row points inside the run's own folder (resolved), so a row edited to point elsewhere serves nothing.

Downloads are tar streams, written as they are read: a merged model of many gigabytes never sits in memory.
"""

from __future__ import annotations

import re
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core import store as stores

from .models import TrainingRun

NAMES = {
    "adapter": "LoRA adapter (safetensors)",
    "model": "Model (safetensors)",
    "merged": "Merged weights (safetensors)",
}
TINY_BUILD = re.compile(r"tiny-local-[0-9a-f]{16}")


def runs_dir() -> Path:
    return Path(settings.VAR_DIR) / "runs"


def run_folder(run_id: int) -> Path:
    return runs_dir() / f"run-{run_id}"


def run_key(run_id: int, name: str) -> str:
    return f"runs/run-{run_id}/{name}"


def checkpoints_key(run_id: int) -> str:
    return f"runs/run-{run_id}/checkpoints"


def _inside_run(run: TrainingRun, value: str) -> Path | None:
    if not value:
        return None
    folder = Path(value).resolve()
    own = run_folder(run.pk).resolve()
    return folder if folder.is_relative_to(own) and folder != own and folder.is_dir() else None


def _has(run: TrainingRun, name: str) -> bool:
    """Whether the run's row says it made artifact `name` (the store or its folder then holds it)."""
    if name == "adapter":
        return run.method == "lora" and bool(run.adapter_dir)
    if name == "model":
        return run.method == "full" and bool(run.adapter_dir)
    return name == "merged" and run.merge_status == "done"


def _local(run: TrainingRun, name: str) -> Path | None:
    return _inside_run(run, run.merged_dir if name == "merged" else run.adapter_dir) if _has(run, name) else None


def run_artifact(run: TrainingRun, name: str) -> Path | None:
    """A local folder holding the run's artifact `name` (to load: evaluation, merge), or None when it has none: the
    worker's own folder on the node that wrote it, else the store's copy, fetched into this node's cache."""
    if not _has(run, name):
        return None
    local = _local(run, name)
    if local is not None:
        return local
    store = stores.store()
    key = run_key(run.pk, name)
    return store.local_folder(key) or store.get_folder(key, stores.cache_dir() / "runs" / f"run-{run.pk}" / name)


@dataclass
class Artifact:
    """An artifact to download: its files (path inside it, size) and how to read one as a stream of chunks."""

    files: list[tuple[str, int]]
    read: Callable[[str], Iterator[bytes]]


def _folder_artifact(folder: Path) -> Artifact:
    files = [
        (path.relative_to(folder).as_posix(), path.stat().st_size)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != stores.MARKER
    ]

    def read(relative: str) -> Iterator[bytes]:
        with (folder / relative).open("rb") as source:
            yield from stores.chunks(source)

    return Artifact(files, read)


def download_artifact(run: TrainingRun, name: str) -> Artifact | None:
    """The run's artifact `name` as it is downloaded: from the worker's folder on its own node, else streamed from the
    store (nothing copied to this node's disk)."""
    if run.status != TrainingRun.Status.SUCCEEDED or not _has(run, name):
        return None
    local = _local(run, name)
    if local is not None:
        return _folder_artifact(local)
    store = stores.store()
    key = run_key(run.pk, name)
    files = store.files(key)
    if not files:
        return None
    return Artifact(files, lambda relative: store.stream(key, relative))


def run_artifacts(run: TrainingRun) -> dict[str, str]:
    """The run's artifacts that can be downloaded, by name, with where each lies: the worker's folder on its own node,
    else the store's unit."""
    if run.status != TrainingRun.Status.SUCCEEDED:
        return {}
    store = stores.store()
    found = {}
    for name in NAMES:
        if not _has(run, name):
            continue
        local = _local(run, name)
        if local is not None:
            found[name] = str(local)
        elif store.complete(run_key(run.pk, name)):
            found[name] = store.location(run_key(run.pk, name))
    return found


def publish(run_id: int, name: str, folder: Path) -> int:
    """Put the run's finished artifact (adapter, model, merged) in the store; returns the bytes sent."""
    return stores.store().put_folder(Path(folder), run_key(run_id, name))


def checkpoint_publish(run_id: int, folder: Path, keep: int) -> int:
    """Put a complete checkpoint (`.../checkpoints/step-N`) in the store, then drop the store's older ones beyond the
    newest `keep`; returns the bytes sent."""
    store = stores.store()
    prefix = checkpoints_key(run_id)
    sent = store.put_folder(folder, f"{prefix}/{folder.name}")
    steps = sorted((name for name in store.units(prefix) if name[5:].isdigit()), key=lambda name: int(name[5:]))
    for old in steps[: -max(1, keep)]:
        store.delete(f"{prefix}/{old}")
    return sent


def checkpoint_restore(run_id: int, out_dir: Path) -> str | None:
    """Before a run starts: when the store's last complete checkpoint is newer than any in `out_dir` (a resume on
    another node, whose disk never saw the run), fetch it into `out_dir/checkpoints/`. Returns its name if fetched."""
    from .recipes import sft

    store = stores.store()
    prefix = checkpoints_key(run_id)
    steps = [name for name in store.units(prefix) if name.startswith("step-") and name[5:].isdigit()]
    if not steps:
        return None
    newest = max(steps, key=lambda name: int(name[5:]))
    here = sft.latest_checkpoint(Path(out_dir))
    if here is not None and int(here.name[5:]) >= int(newest[5:]):
        return None
    fetched = store.get_folder(f"{prefix}/{newest}", Path(out_dir) / "checkpoints" / newest)
    return newest if fetched is not None else None


def tiny_local_publish(folder: Path) -> int:
    """Put a tiny-local build in the store (once: builds are named by their content); returns the bytes sent."""
    store = stores.store()
    key = f"models/{folder.name}"
    return 0 if store.complete(key) else store.put_folder(folder, key)


def tiny_local_fetch(name: str, cache: Path) -> Path | None:
    """The tiny-local build `name` in this node's `cache` (tiny-local's own folder), fetched from the store when
    another node built it; None when no node has stored it."""
    if not TINY_BUILD.fullmatch(name):
        return None
    target = cache / name
    if (target / stores.MARKER).is_file():
        return target
    return stores.store().get_folder(f"models/{name}", target)


def tar_stream(artifact: Artifact, top: str) -> Iterator[bytes]:
    """The artifact's files as an uncompressed tar whose entries sit under `top/` (safetensors do not compress)."""
    now = int(time.time())
    for relative, size in artifact.files:
        info = tarfile.TarInfo(f"{top}/{relative}")
        info.size, info.mtime, info.mode = size, now, 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        for chunk in artifact.read(relative):
            chunk = chunk[: size - written]
            written += len(chunk)
            if chunk:
                yield chunk
            if written >= size:
                break
        yield b"\0" * (size - written)  # a file that shrank meanwhile keeps the size its header announced
        yield b"\0" * (-size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def chat_weights(run: TrainingRun) -> str | None:
    """What a chat with the run talks to: "final" (the finished run's adapter or model), else its newest complete
    checkpoint ("step-N", in the worker's folder on this node or in the store), else None (nothing to talk to yet)."""
    if run.status == TrainingRun.Status.SUCCEEDED and _has(run, "adapter" if run.method == "lora" else "model"):
        return "final"
    from .recipes import sft

    local = sft.latest_checkpoint(run_folder(run.pk))
    stored = [name for name in stores.store().units(checkpoints_key(run.pk)) if name[5:].isdigit()]
    steps = [int(name[5:]) for name in stored] + ([int(local.name[5:])] if local is not None else [])
    return f"step-{max(steps)}" if steps else None


def checkpoint_folder(run: TrainingRun, name: str) -> Path | None:
    """A local folder holding the run's complete checkpoint `name` (step-N): the worker's own on the node that wrote
    it, else the store's copy fetched into this node's cache; None when neither holds it (pruned meanwhile)."""
    if not re.fullmatch(r"step-\d+", name):
        return None
    local = run_folder(run.pk) / "checkpoints" / name
    if (local / "COMPLETE").is_file():
        return local
    store = stores.store()
    key = f"{checkpoints_key(run.pk)}/{name}"
    cached = stores.cache_dir() / "runs" / f"run-{run.pk}" / "checkpoints" / name
    return store.local_folder(key) or store.get_folder(key, cached)
