"""Run in a process of its own on a freshly migrated database (SQLite or PostgreSQL, from DATABASE_URL): an import, a
review, a bulk update and a delete, comparing the maintained counters with a GROUP BY over the examples after each.
Prints one JSON object: {step: {"fresh": n, "maintained": n, "agree": bool}}."""

import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from curation import counters, formats, services  # noqa: E402
from curation.models import Example  # noqa: E402


def compare() -> dict:
    fresh, kept = counters.fresh_counts(connection), counters.maintained_counts(connection)
    return {"fresh": sum(fresh.values()), "maintained": sum(kept.values()), "agree": fresh == kept}


def main() -> None:
    users = get_user_model().objects
    lead, expert = users.create_user("lead", password="x"), users.create_user("expert", password="x")
    project = services.project_create(creator=lead, name="Counters", slug="counters", labels=["P1", "P2", "P3"])
    services.membership_set(project=project, user=expert, role="expert")
    steps = {"migrated": compare()}
    lines = []
    for i in range(60):
        row = {
            "messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}],
            "label": f"P{i % 3 + 1}",
            "tags": ["edge_case"] if i % 7 == 0 else [],
        }
        lines.append(json.dumps(row).encode())
    records = formats.read_jsonl(
        io.BytesIO(b"\n".join(lines)),
        fmt="auto",
        labels=project.labels,
        limits=services.import_limits(),
        max_body_bytes=10**9,
    )
    job = services.import_examples(project=project, user=lead, records=records)
    steps["import"] = {**compare(), "created": job.created_count}
    example = services.review_queue_next(project=project, reviewer=expert)
    services.example_review(example=example, reviewer=expert, version=example.version, decision="approved", label="P3")
    steps["review"] = compare()
    Example.objects.filter(project=project, label="P1").update(status="rejected", tags=["edge_case"])
    steps["bulk_update"] = compare()
    Example.objects.filter(project=project, label="P2")[:1].get().delete()
    Example.objects.filter(project=project, label="P3", status="pending").delete()
    steps["delete"] = compare()
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
