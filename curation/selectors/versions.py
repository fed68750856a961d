"""Reads of dataset versions: what changed between two frozen versions of a project, counted and listed in SQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL

from ..models import DatasetVersion, DatasetVersionItem
from .examples import EXCERPT_CHARS, _cut, _message_diffs

DIFF_KINDS = ("added", "removed", "edited", "relabelled", "moved")
DIFF_PAGE = 50
DIFF_PAGE_MAX = 500

# Both versions' items grouped by what they are an example of: the example's id, or, for an item whose example was
# deleted since (example_id NULL, content kept), its content hash. A group holds one item (added or removed) or two
# (the same example in both). One hash aggregate over the two versions' items; neither version is read into Python.
_GROUPS = """
    SELECT example_id,
           CASE WHEN example_id IS NULL THEN content_hash END AS hash_key,
           max(CASE WHEN version_id = %(a)s THEN id END) AS item_a,
           max(CASE WHEN version_id = %(b)s THEN id END) AS item_b,
           max(CASE WHEN version_id = %(a)s THEN split END) AS split_a,
           max(CASE WHEN version_id = %(b)s THEN split END) AS split_b,
           max(CASE WHEN version_id = %(a)s THEN label END) AS label_a,
           max(CASE WHEN version_id = %(b)s THEN label END) AS label_b,
           max(CASE WHEN version_id = %(a)s THEN content_hash END) AS hash_a,
           max(CASE WHEN version_id = %(b)s THEN content_hash END) AS hash_b
    FROM {table}
    WHERE version_id IN (%(a)s, %(b)s)
    GROUP BY example_id, CASE WHEN example_id IS NULL THEN content_hash END
"""
# The kinds of change, as conditions on a group. An item found in both versions can be edited, relabelled and moved
# at once: it is listed under each.
_KIND_WHERE = {
    "added": "item_a IS NULL",
    "removed": "item_b IS NULL",
    "edited": "item_a IS NOT NULL AND item_b IS NOT NULL AND hash_a <> hash_b",
    "relabelled": "item_a IS NOT NULL AND item_b IS NOT NULL AND label_a <> label_b",
    "moved": "item_a IS NOT NULL AND item_b IS NOT NULL AND split_a <> split_b",
}
_COLUMNS = "example_id, hash_key, item_a, item_b, split_a, split_b, label_a, label_b, hash_a, hash_b"
_ORDER = "CASE WHEN example_id IS NULL THEN 1 ELSE 0 END, example_id, hash_key"  # by example, deleted ones last


def dataset_version_diff(
    *,
    version: DatasetVersion,
    against: DatasetVersion,
    kind: str = "",
    offset: int = 0,
    limit: int = DIFF_PAGE,
) -> dict[str, Any]:
    """What changed from `against` (before) to `version` (after), two versions of one project.

    Items are matched by example id; an item whose example was deleted since it was frozen (example NULL) is matched
    by its content hash to an item of the other version whose example was deleted too (`matched_by` "content_hash";
    such an item cannot show as edited, a changed content being another hash). Counts: added, removed, edited (other
    messages), relabelled, moved (between splits), unchanged; examples per label and per split before and after; the
    label and split transitions. Lists: a page (`offset`, `limit`) of each kind, or of `kind` alone, by example id;
    an edited item comes with the per-turn diff of its messages.

    Every count comes from one aggregate over the two versions' items, each list from a top-N of the same groups:
    neither version is loaded whole (a version may hold 100,000+ items)."""
    table = DatasetVersionItem._meta.db_table
    params = {"a": against.pk, "b": version.pk}
    offset, limit = max(offset, 0), min(max(limit, 1), DIFF_PAGE_MAX)
    kinds = [kind] if kind in DIFF_KINDS else list(DIFF_KINDS)
    # One statement, so that the groups are aggregated once (PostgreSQL materialises a CTE read more than once): the
    # counts, as rows of kind 'count' (the count where a list row has its example id, the two flags where it has its
    # item ids), then a page of each kind.
    counts = (
        "SELECT 'count' AS kind, count(*) AS example_id, NULL AS hash_key,"
        " CASE WHEN hash_a <> hash_b THEN 1 ELSE 0 END AS item_a, CASE WHEN example_id IS NULL THEN 1 ELSE 0 END"
        " AS item_b, split_a, split_b, label_a, label_b, NULL AS hash_a, NULL AS hash_b FROM g"
        " GROUP BY 4, 5, split_a, split_b, label_a, label_b"
    )
    pages = [
        f"SELECT * FROM (SELECT '{name}' AS kind, {_COLUMNS} FROM g WHERE {_KIND_WHERE[name]}"
        f" ORDER BY {_ORDER} LIMIT {limit} OFFSET {offset}) {name}_page"
        for name in kinds
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH g AS ({_GROUPS.format(table=table)}) " + " UNION ALL ".join([counts, *pages]), params)
        rows = cursor.fetchall()
    summary = _summary([(r[5], r[6], r[7], r[8], r[3], r[4], r[1]) for r in rows if r[0] == "count"])
    lists = _lists([row for row in rows if row[0] != "count"], kinds=kinds)
    return {
        "version": {"id": version.pk, "number": version.number},
        "against": {"id": against.pk, "number": against.number},
        **summary,
        "offset": offset,
        "limit": limit,
        "lists": lists,
    }


def _summary(rows: list[tuple]) -> dict[str, Any]:
    """The counts, from the groups counted by (split, label) before and after, edited or not, matched by content."""
    totals = Counter({name: 0 for name in ("before", "after", *DIFF_KINDS, "unchanged", "matched_by_content_hash")})
    labels_before, labels_after, splits_before, splits_after = Counter(), Counter(), Counter(), Counter()
    relabels, moves = Counter(), Counter()
    for split_a, split_b, label_a, label_b, edited, by_content, n in rows:
        if split_a is not None:
            totals["before"] += n
            labels_before[label_a] += n
            splits_before[split_a] += n
        if split_b is not None:
            totals["after"] += n
            labels_after[label_b] += n
            splits_after[split_b] += n
        if split_a is None:
            totals["added"] += n
        elif split_b is None:
            totals["removed"] += n
        else:
            totals["matched_by_content_hash"] += n if by_content else 0
            totals["edited"] += n if edited else 0
            if label_a != label_b:
                totals["relabelled"] += n
                relabels[(label_a, label_b)] += n
            if split_a != split_b:
                totals["moved"] += n
                moves[(split_a, split_b)] += n
            if not edited and label_a == label_b and split_a == split_b:
                totals["unchanged"] += n
    return {
        "totals": dict(totals),
        "labels": [
            {
                "label": label,
                "before": labels_before[label],
                "after": labels_after[label],
                "change": labels_after[label] - labels_before[label],
            }
            for label in sorted(set(labels_before) | set(labels_after))
        ],
        "splits": [
            {"split": split, "before": splits_before[split], "after": splits_after[split]}
            for split in DatasetVersionItem.Split.values
        ],
        "relabels": [{"before": before, "after": after, "count": n} for (before, after), n in sorted(relabels.items())],
        "moves": [{"before": before, "after": after, "count": n} for (before, after), n in sorted(moves.items())],
    }


def _lists(rows: list[tuple], *, kinds: list[str]) -> dict[str, list[dict]]:
    """The pages of each kind of change as entries, with each item's first user turn and each edit's turn diffs."""
    items = [item for row in rows for item in row[3:5] if item is not None]
    excerpts = _excerpts(items)
    edited = [row for row in rows if row[0] == "edited"]
    messages = dict(
        DatasetVersionItem.objects.filter(pk__in=[i for row in edited for i in row[3:5]]).values_list("id", "messages")
    )
    lists: dict[str, list[dict]] = {name: [] for name in kinds}
    for kind, example_id, _, item_a, item_b, split_a, split_b, label_a, label_b, hash_a, hash_b in rows:
        before = {"item": item_a, "split": split_a, "label": label_a, "content_hash": hash_a} if item_a else None
        after = {"item": item_b, "split": split_b, "label": label_b, "content_hash": hash_b} if item_b else None
        turns = []
        if kind == "edited":
            turns = [
                {"role": role, "lines": [{"mark": mark, "text": text} for mark, text in lines]}
                for role, lines in _message_diffs(messages[item_a], messages[item_b])
            ]
        lists[kind].append(
            {
                "example": example_id,
                "matched_by": None if not (before and after) else "example" if example_id else "content_hash",
                "before": before,
                "after": after,
                "excerpt": excerpts.get(item_b or item_a, ""),
                "turns": turns,
            }
        )
    return lists


def _excerpts(item_ids: list[int]) -> dict[int, str]:
    """The first user turn of each item, cut to EXCERPT_CHARS in the database."""
    if not item_ids:
        return {}
    if connection.vendor == "postgresql":
        turn = RawSQL(
            "(SELECT left(m->>'content', %s) FROM jsonb_array_elements(curation_datasetversionitem.messages) m"
            " WHERE m->>'role' = 'user' LIMIT 1)",
            [EXCERPT_CHARS + 1],
        )
    else:
        turn = RawSQL(
            "(SELECT substr(json_extract(m.value, '$.content'), 1, %s)"
            " FROM json_each(curation_datasetversionitem.messages) m"
            " WHERE json_extract(m.value, '$.role') = 'user' LIMIT 1)",
            [EXCERPT_CHARS + 1],
        )
    rows = DatasetVersionItem.objects.filter(pk__in=item_ids).annotate(turn=turn).values_list("id", "turn")
    return {pk: _cut(text or "", EXCERPT_CHARS) for pk, text in rows}


def dataset_version_previous(*, version: DatasetVersion) -> DatasetVersion | None:
    """The version frozen just before this one in its project (the highest lower number), or None."""
    return (
        DatasetVersion.objects.filter(project_id=version.project_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )
