"""Dataset versions: approved examples frozen into a stratified train/val/test split, saved for `datasets`."""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max

from core.errors import ServiceError

from .. import quality
from ..models import DatasetVersion, DatasetVersionItem, Example, Project, ReviewStatus


def dataset_version_freeze(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    train: float = 0.8,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    max_per_label: int | None = None,
) -> DatasetVersion:
    """Freeze the approved examples into an immutable, stratified, group-aware train/val/test split.

    max_per_label balances the labels: surplus examples of over-represented labels are left out, chosen by the
    same seeded order (deterministic). Near-duplicate clusters (from the last quality scan) stay in one split.
    """
    shares = (train, val, test)
    # NaN passes every comparison (a frozen nan share made the versions' list a 500 for good): finite numbers only.
    if any(not isinstance(share, (int, float)) or not math.isfinite(share) or share < 0 for share in shares) or not (
        abs(sum(shares) - 1) <= 1e-6
    ):
        raise ServiceError("train, val and test must be non-negative shares that add up to 1.", field="train")
    if train <= 0:
        raise ServiceError("the train share must be above 0.", field="train")
    if max_per_label is not None and max_per_label < 1:
        raise ServiceError("max_per_label must be at least 1.", field="max_per_label")
    if not -(2**31) <= seed < 2**31 or (max_per_label is not None and max_per_label >= 2**31):
        raise ServiceError("the seed and max_per_label must fit in 32 bits.", field="seed")
    rows = (
        Example.objects.filter(project=project, status=ReviewStatus.APPROVED)
        .order_by("id")
        .values_list("id", "label", "cluster_id")
    )
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for example_id, label, cluster_id in rows.iterator(10_000):
        members[cluster_id or example_id].append((example_id, label))
    if max_per_label is not None:
        members = _capped(members, max_per_label=max_per_label, seed=seed)
    if not members:
        raise ServiceError("there is no approved example to freeze.")
    strata = (
        (group, Counter(label for _, label in group_members).most_common(1)[0][0], len(group_members))
        for group, group_members in members.items()
    )
    splits = quality.assign_splits(strata, train=train, val=val, seed=seed)
    assignment = sorted((example_id, splits[group]) for group, items in members.items() for example_id, _ in items)
    labels = {example_id: label for items in members.values() for example_id, label in items}
    counts: dict[str, Any] = {split: {"total": 0, "labels": Counter()} for split in ("train", "val", "test")}
    for example_id, split in assignment:
        counts[split]["total"] += 1
        counts[split]["labels"][labels[example_id] or "(none)"] += 1
    counts = {split: {"total": c["total"], "labels": dict(c["labels"])} for split, c in counts.items()}
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one freeze at a time per project
        number = (DatasetVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(
            project=project,
            number=number,
            created_by=user,
            seed=seed,
            train_share=train,
            val_share=val,
            test_share=test,
            max_per_label=max_per_label,
            counts=counts,
            content_hash="",
        )
        _version_items_write(version, assignment)
        version.content_hash = _version_hash(version)
        version.save(update_fields=["content_hash"])
    return version


def _capped(members: dict[int, list], *, max_per_label: int, seed: int) -> dict[int, list]:
    """Keep at most max_per_label examples of each label, the first ones in a seeded order."""
    kept: dict[str, int] = Counter()
    result: dict[int, list] = defaultdict(list)
    ordered = sorted(
        (
            (quality.group_rank(seed, example_id), group, example_id, label)
            for group, items in members.items()
            for example_id, label in items
        )
    )
    for _, group, example_id, label in ordered:
        if kept[label] < max_per_label:
            kept[label] += 1
            result[group].append((example_id, label))
    return result


def _version_items_write(version: DatasetVersion, assignment: list[tuple[int, str]]) -> None:
    """Copy each example's content into the version, in the database, ten thousand at a time."""
    table = DatasetVersionItem._meta.db_table
    for start in range(0, len(assignment), 10_000):
        chunk = assignment[start : start + 10_000]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (version_id, example_id, split, content_hash, messages, label)"
                    f" SELECT %s, e.id, v.split, e.content_hash, e.messages, e.label FROM {Example._meta.db_table} e"
                    " JOIN unnest(%s::bigint[], %s::text[]) AS v(id, split) ON v.id = e.id ORDER BY e.id",
                    [version.pk, [example_id for example_id, _ in chunk], [split for _, split in chunk]],
                )
        else:
            split_of = dict(chunk)
            examples = Example.objects.filter(pk__in=split_of).values_list("id", "content_hash", "messages", "label")
            DatasetVersionItem.objects.bulk_create(
                DatasetVersionItem(
                    version=version,
                    example_id=example_id,
                    split=split_of[example_id],
                    content_hash=content,
                    messages=messages,
                    label=label,
                )
                for example_id, content, messages, label in examples
            )


def _version_hash(version: DatasetVersion) -> str:
    digest = hashlib.sha256()
    items = version.items.order_by("example_id").values_list("example_id", "content_hash", "split")
    for example_id, content, split in items.iterator(10_000):
        digest.update(f"{example_id}:{content}:{split}\n".encode())
    return digest.hexdigest()


def dataset_version_save_hf(*, version: DatasetVersion, path: Path) -> Path:
    """Write a frozen version as a Hugging Face `datasets` folder (DatasetDict with train/val/test, save_to_disk).

    Each split is streamed from the database into Arrow files (Dataset.from_generator), never held whole.
    """
    import datasets

    features = datasets.Features(
        {
            "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")}),
            "label": datasets.Value("string"),
        }
    )

    def rows(split: str):
        items = version.items.filter(split=split).order_by("id").values_list("messages", "label")
        for messages, label in items.iterator(2000):
            yield {"messages": [{"role": m["role"], "content": m["content"]} for m in messages], "label": label}

    with tempfile.TemporaryDirectory() as cache:
        splits = {}
        for split in DatasetVersionItem.Split.values:
            splits[split] = datasets.Dataset.from_generator(
                rows, gen_kwargs={"split": split}, features=features, cache_dir=cache, keep_in_memory=False
            )
        datasets.DatasetDict(splits).save_to_disk(str(path))
    return path
