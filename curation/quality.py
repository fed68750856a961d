"""Data quality rules from the brief, in plain Python (no Django): thresholds, duplicate clustering, split
assignment and the readiness verdict. Services and selectors feed them numbers from the database.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the readiness verdict, in one place (shown next to each check)."""

    min_examples: int = 500
    ideal_min: int = 1000
    ideal_max: int = 5000
    max_imbalance_ratio: float = 3.0
    min_edge_case_share: float = 0.05
    min_format_conformance: float = 0.98
    near_duplicate_threshold: float = 0.85
    label_only_share: float = 0.9
    base_model_good_enough: float = 0.9


THRESHOLDS = Thresholds()

# --- Near duplicates -------------------------------------------------------------------------------------------

_WORDS = re.compile(r"\w+", re.UNICODE)
NUM_PERM = 128


def comparable_text(messages: list[dict]) -> str:
    """What differs between examples: every turn but the system prompt they usually share, normalised."""
    return " ".join(m["content"] for m in messages if m.get("role") != "system").lower()


def shingles(text: str, size: int = 3) -> set[bytes]:
    words = _WORDS.findall(text)
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def duplicate_clusters(
    items: Iterable[tuple[int, list[dict]]], *, threshold: float, batch: int = 2000
) -> dict[int, int]:
    """Cluster examples whose comparable text is the same (exact) or similar (MinHash LSH at `threshold`, an
    estimate of Jaccard similarity over word 3-grams). Returns {example id: cluster id} for clustered examples
    only; the cluster id is the smallest example id in the cluster.
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    exact: dict[bytes, int] = {}
    groups = _UnionFind()
    pending: list[tuple[int, set[bytes]]] = []

    def flush() -> None:
        hashes = MinHash.bulk([shingle_set for _, shingle_set in pending], num_perm=NUM_PERM)
        for (example_id, _), minhash in zip(pending, hashes, strict=True):
            for other in lsh.query(minhash):
                groups.union(example_id, other)
            lsh.insert(example_id, minhash)
        pending.clear()

    for example_id, messages in items:
        text = comparable_text(messages)
        key = hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).digest()
        if key in exact:
            groups.union(example_id, exact[key])
            continue  # an exact copy adds nothing to the LSH index
        exact[key] = example_id
        pending.append((example_id, shingles(text)))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    members: dict[int, list[int]] = defaultdict(list)
    for example_id in list(groups.parent):
        members[groups.find(example_id)].append(example_id)
    return {m: root for root, group in members.items() if len(group) > 1 for m in group}


# --- Splits ----------------------------------------------------------------------------------------------------


def group_rank(seed: int, group: int) -> str:
    """A deterministic, seed-dependent order of groups within a stratum."""
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(groups: Iterable[tuple[int, str, int]], *, train: float, val: float, seed: int) -> dict[int, str]:
    """Assign each group (id, stratum label, size) to train, val or test.

    Stratified: within each label the groups are shuffled by a seeded hash and cut at the train and train + val
    shares of that label's examples. Group-aware: a group (a near-duplicate cluster, or a single example) is never
    split, so no near duplicate of a test example is trained on. Deterministic for a seed.
    """
    strata: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for group, stratum, size in groups:
        strata[stratum].append((group_rank(seed, group), group, size))
    result = {}
    for members in strata.values():
        members.sort()
        total = sum(size for _, _, size in members)
        start = 0
        for _, group, size in members:
            if start < total * train:
                result[group] = "train"
            elif start < total * (train + val):
                result[group] = "val"
            else:
                result[group] = "test"
            start += size
    return result


# --- Readiness ---------------------------------------------------------------------------------------------------


# What people read for each check; the ids stay for programs (the API, data-check attributes, tests).
CHECK_NAMES = {
    "min_examples": "Enough approved examples",
    "all_reviewed": "Version fully approved",
    "label_balance": "Labels balanced",
    "edge_cases": "Edge cases covered",
    "duplicates": "No duplicates",
    "no_leakage": "No leakage across splits",
    "format_conformance": "Answers fit the output format",
    "token_length": "Examples within the max length",
    "split_frozen": "Split frozen",
}


@dataclass
class Check:
    id: str
    passed: bool
    detail: str
    threshold: str
    # "unmeasured": the data cannot tell yet (nothing approved, no scan, no version); such a check never passes.
    # Otherwise "passed" or "failed", from `passed`.
    status: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or CHECK_NAMES.get(self.id, self.id.replace("_", " ").capitalize())
        if self.status == "unmeasured":
            self.passed = False
        else:
            self.status = "passed" if self.passed else "failed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_deficits(label_counts: dict[str, int], *, max_ratio: float) -> dict[str, int]:
    """How many more approved examples each label needs so that the largest is at most max_ratio times it."""
    if not label_counts:
        return {}
    largest = max(label_counts.values())
    floor = math.ceil(largest / max_ratio)
    return {label: floor - count for label, count in label_counts.items() if count < floor}


def over_length_summary(lengths: dict[str, Any], what: str = "approved examples") -> str:
    """'3 approved examples are longer than 1,024 tokens: #12 (3,100), #40 (1,200) and 1 more (estimated).' from
    selectors.over_length_examples; '' when none is."""
    count, limit = lengths["count"], lengths["max_length"]
    if not count:
        return ""
    named = lengths["examples"]
    names = ", ".join(f"#{example['id']} ({example['tokens']:,})" for example in named)
    more = f" and {count - len(named):,} more" if count > len(named) else ""
    how = "" if lengths["exact"] else " (estimated)"
    least = "" if lengths["complete"] else "At least "
    are = f"{what} are" if count > 1 or least else f"{what.replace('examples', 'example', 1)} is"
    return f"{least}{count:,} {are} longer than {limit:,} tokens{how}: {names}{more}."


def token_length_check(lengths: dict[str, Any] | None, *, scanned: bool) -> Check:
    """No approved example longer than the max length a run would use: a run cuts such an example, and drops it
    when nothing of its answer is left."""
    if lengths is None:
        detail = (
            "The last quality scan did not keep the examples' lengths: run it again."
            if scanned
            else "Token lengths not counted yet: run the quality scan."
        )
        return Check("token_length", False, detail, "none over the max length", status="unmeasured")
    limit, count = lengths["max_length"], lengths["count"]
    near = ""
    if lengths["near"] and not lengths["exact"]:
        near = (
            f" {lengths['near']:,} more are within the estimate's error of the limit: set the project's tokenizer "
            "to count them exactly."
        )
    if count:
        detail = (
            over_length_summary(lengths) + f" A run at {limit:,} tokens cuts them, and leaves out any whose answer is "
            "cut whole: shorten or split them, or raise the max length."
        )
    else:
        detail = f"No approved example is longer than {limit:,} tokens, the max length a run would use."
    return Check("token_length", count == 0, detail + near, f"none over {limit:,} tokens")


def readiness(stats: dict[str, Any], t: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """The verdict from the project's numbers (see selectors.readiness_stats for what each one is)."""
    approved = stats["approved"]
    labels = stats["label_counts"]
    checks = []

    ideal = f"{t.ideal_min:,}-{t.ideal_max:,} is the ideal range"
    checks.append(
        Check(
            "min_examples",
            approved >= t.min_examples,
            f"{approved:,} approved examples; at least {t.min_examples:,} are needed and {ideal}."
            + (
                ""
                if approved < t.min_examples or t.ideal_min <= approved <= t.ideal_max
                else (
                    " Below the ideal range." if approved < t.ideal_min else " Above the ideal range: fine, but slower."
                )
            ),
            f">= {t.min_examples:,}",
        )
    )

    version = stats.get("version")
    if version is None:
        checks.append(
            Check(
                "all_reviewed",
                False,
                "No dataset version frozen yet: nothing to check.",
                "every example of the version approved",
                status="unmeasured",
            )
        )
    else:
        stale = version["not_approved_now"]
        checks.append(
            Check(
                "all_reviewed",
                stale == 0,
                f"Version {version['number']}: all {version['size']:,} examples approved by an expert."
                if stale == 0
                else f"Version {version['number']}: {stale:,} examples are no longer approved; freeze a new version.",
                "every example of the version approved",
            )
        )

    # The project's label set, each label counted (a label with nothing approved is 0); without a set, the labels
    # the approved examples carry.
    label_set = stats.get("labels") or []
    if label_set:
        labels = {label: labels.get(label, 0) for label in label_set}
    if len(labels) >= 2 and approved == 0:
        checks.append(
            Check(
                "label_balance",
                False,
                f"No approved example yet: the balance of the {len(labels)} labels cannot be measured.",
                f"<= {t.max_imbalance_ratio:g}x",
                status="unmeasured",
            )
        )
    elif len(labels) >= 2:
        smallest, largest = min(labels.values()), max(labels.values())
        ratio = largest / smallest if smallest else math.inf
        deficits = label_deficits(labels, max_ratio=t.max_imbalance_ratio)
        needs = "; ".join(f"{label}: {count:,} more approved examples needed" for label, count in deficits.items())
        missing = [label for label, count in labels.items() if not count]
        shown = f"{largest:,} / 0 (nothing approved as {', '.join(missing)})" if missing else f"{ratio:.1f}"
        checks.append(
            Check(
                "label_balance",
                ratio <= t.max_imbalance_ratio,
                f"Largest label / smallest = {shown}." + (f" {needs} for a balanced set." if needs else ""),
                f"<= {t.max_imbalance_ratio:g}x",
            )
        )
    else:
        checks.append(
            Check(
                "label_balance",
                True,
                "No label set, and at most one label in use: nothing to balance.",
                f"<= {t.max_imbalance_ratio:g}x",
            )
        )

    share = stats["edge_cases"] / approved if approved else 0.0
    checks.append(
        Check(
            "edge_cases",
            share >= t.min_edge_case_share,
            f"{stats['edge_cases']:,} approved examples tagged edge_case ({share:.1%})."
            if approved
            else "No approved example yet: the share of edge cases cannot be measured.",
            f">= {t.min_edge_case_share:.0%}",
            status="" if approved else "unmeasured",
        )
    )

    scan = stats.get("scan")
    if scan is None:
        checks.append(
            Check(
                "duplicates",
                False,
                "Duplicates not checked yet: run the quality scan.",
                f"no cluster at Jaccard >= {t.near_duplicate_threshold:g}",
                status="unmeasured",
            )
        )
    else:
        # Clusters as the dashboard and the duplicates API count them: two or more members not rejected.
        clusters = stats["duplicate_clusters"]
        checks.append(
            Check(
                "duplicates",
                clusters == 0,
                "No exact or near-duplicate clusters among the examples not rejected."
                if clusters == 0
                else f"{clusters:,} clusters of exact or near-duplicate examples (not rejected, pending ones "
                "included); keep one of each.",
                f"no cluster at Jaccard >= {scan['threshold']:g}",
            )
        )

    if version is None:
        checks.append(
            Check("no_leakage", False, "No version frozen yet.", "no cluster across splits", status="unmeasured")
        )
    else:
        leaks = version["leaking_clusters"]
        checks.append(
            Check(
                "no_leakage",
                leaks == 0,
                "No near duplicate crosses the splits of the version."
                if leaks == 0
                else f"{leaks:,} near-duplicate clusters cross splits; freeze a new version after the quality scan.",
                "no cluster across splits",
            )
        )

    checked, ok = stats["format_checked"], stats["format_ok"]
    if stats.get("format_kind", "none") == "none":
        checks.append(
            Check(
                "format_conformance",
                True,
                "No output format set for this project.",
                f">= {t.min_format_conformance:.0%}",
            )
        )
    else:
        conformance = ok / checked if checked else 0.0
        unchecked = approved - checked
        checks.append(
            Check(
                "format_conformance",
                checked > 0 and unchecked == 0 and conformance >= t.min_format_conformance,
                f"{ok:,} of {checked:,} approved answers fit the output format ({conformance:.1%})."
                + (f" {unchecked:,} not checked yet." if unchecked else "")
                if checked
                else "No approved answer checked against the output format yet.",
                f">= {t.min_format_conformance:.0%}",
                status="" if checked else "unmeasured",
            )
        )

    if "token_lengths" in stats:
        checks.append(token_length_check(stats["token_lengths"], scanned=scan is not None))

    checks.append(
        Check(
            "split_frozen",
            version is not None,
            f"Version {version['number']} frozen ({version['size']:,} examples)."
            if version
            else "Freeze a train/validation/test split before training.",
            "a frozen version",
        )
    )

    advice = []
    if approved < t.ideal_min:
        advice.append(
            f"Aim for {t.ideal_min:,}-{t.ideal_max:,} approved examples, the ideal range ({approved:,} now): more "
            "reviewed examples usually beat more training epochs."
        )
    if stats.get("label_only_share", 0) >= t.label_only_share:
        advice.append(
            "The answers are only a label: try an embeddings + classifier baseline first; it is cheaper "
            "to build and to serve, and fine-tuning must beat it to be worth it."
        )
    base = stats.get("base_model_score")
    if base is not None and base >= t.base_model_good_enough:
        advice.append(
            f"The base model already reaches {base:.0%} on the primary metrics: fine-tuning is probably not worth it."
        )
    return {
        "ready": all(check.passed for check in checks),
        "checks": [check.as_dict() for check in checks],
        "advice": advice,
        "thresholds": asdict(t),
    }
