"""The counters the database maintains always equal a fresh count of the examples."""

from collections import Counter

import pytest

from curation import selectors, services
from curation.models import Example, ExampleCounter

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def fresh(project) -> Counter:
    counts = Counter()
    for example in Example.objects.filter(project=project):
        state = 0 if example.format_ok is None else (1 if example.format_ok else 2)
        counts[(example.status, example.label, state, "edge_case" in example.tags)] += 1
    return counts


def maintained(project) -> Counter:
    return Counter(
        {
            (r["status"], r["label"], r["format_state"], r["edge_case"]): r["count"]
            for r in selectors.example_counts(project=project)
        }
    )


def test_counters_follow_imports_edits_reviews_scans_and_deletes(project, lead, expert, lead_api):
    rows = [chat(f"ticket {i}", label=f"P{i % 4 + 1}", tags=["edge_case"] if i % 5 == 0 else []) for i in range(40)]
    post_jsonl(lead_api, project.slug, jsonl(rows))
    assert maintained(project) == fresh(project)
    examples = list(Example.objects.filter(project=project).order_by("id"))
    services.example_update(example=examples[0], user=lead, version=1, changes={"tags": [], "label": "P3"})
    claimed = services.review_queue_next(project=project, reviewer=expert)  # a lock alone counts nothing
    services.example_review(example=claimed, reviewer=expert, version=claimed.version, decision="approved", label="P2")
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    Example.objects.filter(pk__in=[e.pk for e in examples[10:15]]).update(status="rejected")
    Example.objects.filter(pk=examples[20].pk).delete()
    assert maintained(project) == fresh(project)
    assert selectors.project_status_counts(project=project) == {"pending": 33, "approved": 1, "rejected": 5}
    assert all(row.n >= 0 for row in ExampleCounter.objects.all())
