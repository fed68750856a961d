"""The project's history: versions, the runs trained on them and their evaluations on one time line, newest first,
with each evaluation's verdict and primary metrics beside the one before it, in the browser and over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import DatasetVersion
from evaluation.models import Evaluation
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def _at(row, minutes: int):
    """Set the row's creation time (auto_now_add) to `minutes` after a fixed start."""
    start = timezone.now() - timedelta(days=1)
    type(row).objects.filter(pk=row.pk).update(created_at=start + timedelta(minutes=minutes))
    return row


def _version(project, number: int, minutes: int) -> DatasetVersion:
    counts = {"train": {"total": 8 * number, "labels": {}}, "val": {"total": number, "labels": {}}}
    version = DatasetVersion.objects.create(
        project=project, number=number, train_share=0.8, val_share=0.1, test_share=0.1, counts=counts, content_hash=""
    )
    return _at(version, minutes)


def _evaluation(project, run, minutes: int, status="succeeded", outcome="", values=(None, None)):
    results = [
        {"system": "fine_tuned", "name": "Fine-tuned", "status": "succeeded",
         "metrics": {"format_accuracy": values[0], "label_accuracy": values[1]}},
        {"system": "base_zero_shot", "name": "Base model, zero-shot", "status": "succeeded",
         "metrics": {"format_accuracy": 0.1, "label_accuracy": 0.2}},
    ]  # fmt: skip
    verdict = {"outcome": outcome, "summary": f"Fine-tuned: {outcome} on 40 test examples."} if outcome else {}
    evaluation = Evaluation.objects.create(
        project=project, training_run=run, dataset_version=run.dataset_version, status=status,
        systems=["fine_tuned", "base_zero_shot"], primary_metrics=["format_accuracy", "label_accuracy"],
        results=results if outcome else [], verdict=verdict,
    )  # fmt: skip
    return _at(evaluation, minutes)


@pytest.fixture
def history(project, lead):
    """v1 -> run 1 -> evaluation (loses) -> v2 -> run 2 -> evaluation (beats all) -> another evaluation, running."""
    v1 = _version(project, 1, 0)
    r1 = _at(TrainingRun.objects.create(project=project, dataset_version=v1, created_by=lead, base_model="tiny-local",
                                        status="succeeded"), 1)  # fmt: skip
    e1 = _evaluation(project, r1, 2, outcome="loses", values=(0.6, 0.5))
    v2 = _version(project, 2, 3)
    r2 = _at(TrainingRun.objects.create(project=project, dataset_version=v2, created_by=lead, base_model="tiny-local",
                                        status="succeeded"), 4)  # fmt: skip
    e2 = _evaluation(project, r2, 5, outcome="beats_all", values=(0.95, 0.9))
    e3 = _evaluation(project, r2, 6, status="running")
    return {"v1": v1, "r1": r1, "e1": e1, "v2": v2, "r2": r2, "e2": e2, "e3": e3}


def test_the_time_line_lists_versions_runs_and_evaluations_newest_first(project, history):
    from evaluation import selectors

    entries = selectors.project_history(project=project)
    h = history
    assert [(e["kind"], e["id"]) for e in entries] == [
        ("evaluation", h["e3"].pk),
        ("evaluation", h["e2"].pk),
        ("run", h["r2"].pk),
        ("version", h["v2"].pk),
        ("evaluation", h["e1"].pk),
        ("run", h["r1"].pk),
        ("version", h["v1"].pk),
    ]
    running, moved, run2, v2, first = entries[0], entries[1], entries[2], entries[3], entries[4]
    assert running["outcome"] == "" and running["status"] == "running" and not running["verdict_moved"]
    assert run2["dataset_version"] == {"id": h["v2"].pk, "number": 2}
    assert v2["examples"] == 18 and v2["previous_version"] == {"id": h["v1"].pk, "number": 1}
    # The round of review between v1 and v2 moved the verdict: loses -> beats all, each metric beside its old value.
    assert moved["verdict_moved"] and moved["outcome"] == "beats_all" and moved["training_run"] == h["r2"].pk
    assert moved["previous_evaluation"]["id"] == h["e1"].pk and moved["previous_evaluation"]["outcome"] == "loses"
    assert moved["previous_evaluation"]["dataset_version"]["number"] == 1
    assert [(m["metric"], m["value"], m["previous"]) for m in moved["metrics"]] == [
        ("format_accuracy", 0.95, 0.6),
        ("label_accuracy", 0.9, 0.5),
    ]
    assert first["previous_evaluation"] is None and not first["verdict_moved"]
    assert [e["kind"] for e in selectors.project_history(project=project, limit=2)] == ["evaluation", "evaluation"]


def test_the_history_page_links_each_entry_and_shows_what_moved_the_verdict(project, history, client, expert, outsider):
    h = history
    client.force_login(expert)
    page = client.get(f"/projects/{project.slug}/history/").content.decode()
    slug = project.slug
    order = [
        page.index(f'data-entry="{kind}-{h[key].pk}"')
        for kind, key in (("evaluation", "e3"), ("evaluation", "e2"), ("run", "r2"), ("version", "v2"),
                          ("evaluation", "e1"), ("run", "r1"), ("version", "v1"))
    ]  # fmt: skip
    assert order == sorted(order)
    assert f'href="/projects/{slug}/evaluations/{h["e2"].pk}/"' in page
    assert f'href="/projects/{slug}/runs/{h["r1"].pk}/"' in page
    moved = page.split(f'data-entry="evaluation-{h["e2"].pk}"', 1)[1].split("data-entry=", 1)[0]
    assert 'data-outcome="beats_all"' in moved and "beats all baselines" in moved
    assert "The verdict moved: loses to a baseline" in moved
    diff = f'href="/projects/{slug}/versions/{h["v2"].pk}/diff/?against={h["v1"].pk}"'
    assert diff in moved and "95.0%" in moved and "(was 60.0%, evaluation" in moved
    assert "Fine-tuned: beats_all on 40 test examples." in moved
    assert f'on <a href="/projects/{slug}/versions/{h["v2"].pk}/diff/">v2</a>' in page  # the run's version
    assert page.index("<h1") < page.index("<h2")
    dashboard = client.get(f"/projects/{slug}/").content.decode()
    assert f'href="/projects/{slug}/history/" data-history' in dashboard
    client.force_login(outsider)
    assert client.get(f"/projects/{slug}/history/").status_code == 404


def test_the_history_over_the_api(project, history, expert_api, outsider_api):
    url = f"/api/v1/projects/{project.slug}/history/"
    body = expert_api.get(url).json()
    assert [(e["kind"], e["id"]) for e in body][:3] == [
        ("evaluation", history["e3"].pk),
        ("evaluation", history["e2"].pk),
        ("run", history["r2"].pk),
    ]
    assert body[1]["verdict_moved"] and body[1]["metrics"][0] == {
        "metric": "format_accuracy",
        "name": "format accuracy",
        "value": 0.95,
        "previous": 0.6,
    }
    assert body[2]["base_model"] == "tiny-local" and body[2]["dataset_version"]["number"] == 2
    assert len(expert_api.get(url + "?limit=3").json()) == 3
    assert expert_api.get(url + "?limit=0").status_code == 400
    assert outsider_api.get(url).status_code == 404
