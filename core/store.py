"""The artifact store: where a run's checkpoints, adapter, full model and merged weights, and tiny-local's builds live
so that every node reaches them. Nothing outside it is assumed to survive a node.

FINELINE_ARTIFACT_STORE names it by URL: a local folder (the default, `$FINELINE_VAR_DIR/store`, what `make run`
uses) or an S3-compatible bucket, `s3://bucket/prefix` (AWS, MinIO, Ceph...; FINELINE_S3_ENDPOINT_URL for one that
is not AWS; the credentials from the usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). fsspec (s3fs for buckets)
does the talking.

A folder is stored as a unit under a key (`runs/run-12/checkpoints/step-40`): its files first, then a COMPLETE marker.
Readers take a unit only when its marker is there, so a node that died mid-upload leaves nothing anyone uses. Units
are never rewritten in place under the same key by two writers (checkpoints are per step, builds per content hash).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from django.conf import settings

MARKER = "COMPLETE"
CHUNK = 1024 * 1024


class Store:
    """A root (a folder or a bucket prefix) and the fsspec filesystem that reaches it."""

    def __init__(self, url: str, endpoint_url: str = ""):
        import fsspec
        import fsspec.implementations.local

        options = {}
        if url.startswith("s3://"):
            # No listing cache: another node's upload must be seen at once.
            options = {"use_listings_cache": False, "skip_instance_cache": True}
            if endpoint_url:
                options["endpoint_url"] = endpoint_url
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)

    def path(self, key: str) -> str:
        parts = [part for part in key.strip("/").split("/") if part]
        if not parts or any(part in (".", "..") for part in parts):
            raise ValueError(f"not a store key: {key!r}")
        return "/".join([self.root, *parts])

    def location(self, key: str) -> str:
        """Where the unit lies, as an operator names it: a path, or s3://bucket/prefix/key."""
        return self.path(key) if self.local else f"s3://{self.path(key)}"

    def put_folder(self, folder: Path, key: str) -> int:
        """Upload the regular files under `folder` as the unit `key`, its COMPLETE marker last. Returns the bytes
        sent. A unit already complete under that key is replaced (its marker first, so nobody reads it half-new)."""
        folder = Path(folder)
        target = self.path(key)
        if self.fs.exists(f"{target}/{MARKER}"):
            self.fs.rm(f"{target}/{MARKER}")
        sent = 0
        for source in sorted(folder.rglob("*")):
            if source.is_symlink() or not source.is_file() or source.name == MARKER:
                continue
            remote = f"{target}/{source.relative_to(folder).as_posix()}"
            if self.local:
                self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(source), remote)
            sent += source.stat().st_size
        if self.local:
            self.fs.makedirs(target, exist_ok=True)
        self.fs.pipe_file(f"{target}/{MARKER}", b"complete\n")
        return sent

    def complete(self, key: str) -> bool:
        return self.fs.exists(f"{self.path(key)}/{MARKER}")

    def units(self, prefix: str) -> list[str]:
        """The names of the complete units right under `prefix` (`step-40`, ...)."""
        base = self.path(prefix)
        try:
            entries = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        names = [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]
        return sorted(name for name in names if self.fs.exists(f"{base}/{name}/{MARKER}"))

    def files(self, key: str) -> list[tuple[str, int]]:
        """(path inside the unit, size) of a complete unit's files, marker left out, sorted; [] when not complete."""
        if not self.complete(key):
            return []
        base = self.path(key)
        found = self.fs.find(base, detail=True)
        listed = []
        for name, info in found.items():
            relative = str(name)[len(base) :].lstrip("/") if str(name).startswith(base) else str(name)
            if relative and relative != MARKER and info.get("type", "file") == "file":
                listed.append((relative, int(info.get("size") or 0)))
        return sorted(listed)

    def open(self, key: str, relative: str):
        return self.fs.open(f"{self.path(key)}/{relative}", "rb")

    def local_folder(self, key: str) -> Path | None:
        """The unit's own folder when the store is a local folder and the unit is complete (no copy needed)."""
        if self.local and self.complete(key):
            return Path(self.path(key))
        return None

    def get_folder(self, key: str, folder: Path) -> Path | None:
        """The complete unit `key` downloaded into `folder` (to a temporary sibling first, then renamed); a folder
        already fetched (its marker there) is reused. None when the store has no complete unit under `key`."""
        folder = Path(folder)
        if (folder / MARKER).is_file():
            return folder
        files = self.files(key)
        if not files:
            return None
        partial = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.part")
        partial.mkdir(parents=True)
        try:
            for relative, _size in files:
                (partial / relative).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{self.path(key)}/{relative}", str(partial / relative))
            (partial / MARKER).write_text("complete\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return folder

    def delete(self, key: str) -> None:
        """Remove the unit (its marker first: a reader never sees a half-removed unit as complete)."""
        target = self.path(key)
        if self.fs.exists(f"{target}/{MARKER}"):
            self.fs.rm(f"{target}/{MARKER}")
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def stream(self, key: str, relative: str) -> Iterator[bytes]:
        with self.open(key, relative) as source:
            yield from chunks(source)


def chunks(source) -> Iterator[bytes]:
    """A binary file read a CHUNK at a time."""
    while chunk := source.read(CHUNK):
        yield chunk


def store_url() -> str:
    url = str(getattr(settings, "FINELINE_ARTIFACT_STORE", "") or "").strip()
    return url or str(Path(settings.VAR_DIR) / "store")


@lru_cache(maxsize=4)
def _store(url: str, endpoint_url: str) -> Store:
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True)
    return Store(url, endpoint_url)


def store() -> Store:
    """The configured store (one per URL and endpoint in a process)."""
    return _store(store_url(), str(getattr(settings, "FINELINE_S3_ENDPOINT_URL", "") or ""))


def cache_dir() -> Path:
    """Where a node keeps what it fetched from the store (evaluation, merge, resume): safe to delete."""
    return Path(settings.VAR_DIR) / "cache"
