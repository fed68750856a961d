"""The evaluation pages: who sees and does what, the verdict and table, the per-example list, prompt variants."""

import pytest

from curation.models import DatasetVersionItem
from evaluation.models import Evaluation, EvaluationAnswer, PromptVariant
from training.models import TrainingRun

from ..helpers import heartbeat_beating

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(project, lead, version):
    run = TrainingRun.objects.create(
        project=project, dataset_version=version, created_by=lead, base_model="tiny-local", status="succeeded"
    )
    cheap = {"cost_per_query_usd": 1e-5}
    results = [
        {"system": "fine_tuned", "name": "Fine-tuned", "status": "succeeded", "notes": "run",
         "metrics": {"format_accuracy": 1.0, "label_accuracy": 0.9, "latency_p95_ms": 40.0, **cheap}},
        {"system": "base_zero_shot", "name": "Base model, zero-shot", "status": "succeeded", "notes": "",
         "metrics": {"format_accuracy": 0.1, "label_accuracy": 0.2, "latency_p95_ms": 30.0, **cheap}},
        {"system": "frontier", "name": "Frontier model", "status": "not_configured", "notes": "set it", "metrics": {}},
        {"system": "majority_label", "name": "Majority label (reference)", "status": "succeeded", "reference": True,
         "notes": "no model: always answers P4", "metrics": {"label_accuracy": 0.7, "macro_f1": 0.2}},
    ]  # fmt: skip
    comparison = {"n": 12, "significant": True, "better": True, "n_needed": None}
    verdict = {
        "outcome": "inconclusive",
        "beats_all": False,
        "n": 12,
        "task_shape": "format",
        "summary": "Fine-tuned: inconclusive on 12 test examples; the 95% interval ...",
        "primary_reason": "An output format is set (regex): format accuracy, and label accuracy since 12 of 12 ...",
        "to_conclude": "About 300 test examples (now 12) would make the widest undecided interval exclude 0.",
        "comparisons": [
            {
                **comparison,
                "baseline": "base_zero_shot",
                "metric": "format_accuracy",
                "candidate": 1.0,
                "baseline_value": 0.1,
                "difference": 0.9,
                "ci_low": 0.7,
                "ci_high": 1.0,
            },
            {
                **comparison,
                "baseline": "majority_label",
                "metric": "label_accuracy",
                "candidate": 0.9,
                "baseline_value": 0.7,
                "difference": 0.2,
                "ci_low": -0.05,
                "ci_high": 0.45,
                "significant": False,
                "better": None,
                "n_needed": 300,
            },
        ],
        "best": {"format_accuracy": "fine_tuned", "latency_p95_ms": "base_zero_shot", "label_accuracy": None},
        "left_out": [],
    }
    evaluation = Evaluation.objects.create(
        project=project, training_run=run, dataset_version=version, created_by=lead, status="succeeded",
        systems=["fine_tuned", "base_zero_shot", "frontier"], primary_metrics=["format_accuracy", "label_accuracy"],
        results=results, verdict=verdict,
    )  # fmt: skip
    items = list(DatasetVersionItem.objects.filter(version=version, split="test").order_by("id")[:3])
    for number, item in enumerate(items):
        EvaluationAnswer.objects.create(
            evaluation=evaluation, item=item, system="fine_tuned", answer=f"answer {number}", format_ok=number != 1
        )
        EvaluationAnswer.objects.create(
            evaluation=evaluation, item=item, system="base_zero_shot", answer="", format_ok=False
        )
    return evaluation, items


def test_the_detail_page_leads_with_the_verdict_and_marks_the_best(project, finished, client, expert, outsider):
    evaluation, _ = finished
    client.force_login(expert)
    page = client.get(f"/projects/{project.slug}/evaluations/{evaluation.pk}/").content.decode()
    assert page.index("Fine-tuned: inconclusive on 12 test examples") < page.index("data-results")
    assert 'data-outcome="inconclusive"' in page and "<strong data-verdict-n>12</strong> test examples" in page
    assert "About 300 test examples (now 12)" in page and "Why these metrics (format task): An output format" in page
    # Every comparison with its difference and interval; the undecided one says what would decide it.
    assert '<tr data-comparison="base_zero_shot:format_accuracy" data-significant="true">' in page
    assert "+90.0 pts" in page and "+70.0 pts to +100.0 pts" in page and "-5.0 pts to +45.0 pts" in page
    assert "undecided: the interval includes 0 (about 300 examples would tell)" in page
    # The star only where the verdict found the best significantly better than the runner-up.
    assert '<td class="num best" data-metric="format_accuracy">100.0% ★</td>' in page
    assert '<td class="num best" data-metric="latency_p95_ms">30 ms ★</td>' in page  # lower is better
    assert '<td class="num " data-metric="label_accuracy">90.0%</td>' in page  # 0.9 against 0.7: no star
    assert 'data-system="majority_label" class=" reference"' in page and "always answers P4" in page
    assert "not configured" in page and "$0.0100 / 1k" in page and 'data-metric="format_accuracy" width' in page
    client.force_login(outsider)
    assert client.get(f"/projects/{project.slug}/evaluations/{evaluation.pk}/").status_code == 404


def test_the_per_example_list_puts_failures_first_and_filters_them(project, finished, client, lead):
    evaluation, items = finished
    client.force_login(lead)
    url = f"/projects/{project.slug}/evaluations/{evaluation.pk}/examples/"
    page = client.get(url).content.decode()
    order = [page.index(f'data-item="{item.pk}"') for item in items]
    assert order[1] < order[0] < order[2]  # the failed one (format) first
    failures = client.get(url + "?failures=1").content.decode()
    assert f'data-item="{items[1].pk}"' in failures and f'data-item="{items[0].pk}"' not in failures


def test_starting_an_evaluation_needs_a_lead_and_a_finished_run(project, finished, client, lead, expert):
    evaluation, _ = finished
    url = f"/projects/{project.slug}/evaluations/"
    client.force_login(expert)
    assert client.get(url).status_code == 200
    assert client.post(url, {"training_run": evaluation.training_run_id}).status_code == 403
    client.force_login(lead)
    form = client.get(url).content.decode()
    assert "Preselected for a format task: An output format is set (regex): format accuracy, and label" in form
    assert 'value="format_accuracy" checked' in form and 'value="chrf" >' in form
    response = client.post(url, {"training_run": evaluation.training_run_id, "systems": ["fine_tuned"]})
    created = Evaluation.objects.exclude(pk=evaluation.pk).get()
    assert response["Location"] == f"/projects/{project.slug}/evaluations/{created.pk}/"
    assert created.systems == ["fine_tuned"] and created.primary_metrics == [] or created.primary_metrics
    live = client.get(f"/projects/{project.slug}/evaluations/{created.pk}/?part=live", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in live.content.decode()
    Evaluation.objects.filter(pk=created.pk).update(status="succeeded")
    done = client.get(f"/projects/{project.slug}/evaluations/{created.pk}/?part=live", headers={"HX-Request": "true"})
    assert done.headers["HX-Refresh"] == "true"


def test_prompt_variants_are_edited_by_leads(project, finished, client, lead, expert, version):
    train = list(version.items.filter(split="train").order_by("label", "id").values_list("example_id", flat=True)[:2])
    url = f"/projects/{project.slug}/prompts/"
    client.force_login(expert)
    assert client.post(url, {"name": "x"}).status_code == 403
    client.force_login(lead)
    page = client.get(url).content.decode()
    assert f'value="{train[0]}"' in page
    client.post(url, {"name": "terse", "system_prompt": "Be terse.", "few_shot": train})
    variant = PromptVariant.objects.get()
    assert (variant.name, variant.system_prompt, variant.few_shot) == ("terse", "Be terse.", train)
    client.post(url, {"variant": variant.pk, "name": "terser", "system_prompt": "", "few_shot": []})
    variant.refresh_from_db()
    assert (variant.name, variant.few_shot) == ("terser", [])
    assert 'data-confirm="Delete the prompt variant terser?"' in client.get(url).content.decode()
    client.post(url, {"delete": variant.pk})
    assert not PromptVariant.objects.exists()


def test_failures_go_back_to_the_review_queue_tagged_in_a_new_round(project, finished, client, lead, expert):
    from curation import services as curation_services
    from curation.models import Example

    evaluation, items = finished
    failed = Example.objects.get(pk=items[1].example_id)
    # maria reviewed it once already (approved); the queue would never give it to her again in the same round
    curation_services.example_review(
        example=failed, reviewer=expert, version=failed.version, decision="approved", label="P1"
    )
    client.force_login(expert)
    url = f"/projects/{project.slug}/evaluations/{evaluation.pk}/send-to-review/"
    assert client.post(url).status_code == 403
    client.force_login(lead)
    client.post(url)
    failed.refresh_from_db()
    assert failed.status == "pending" and f"eval-{evaluation.pk}" in failed.tags and failed.review_round == 1
    assert failed.reviews.count() == 1  # the earlier review is kept
    assert "Sent back to review" in failed.revisions.order_by("-version").first().comment
    queued = curation_services.review_queue_next(project=project, reviewer=expert, label=failed.label)
    seen = set()
    while queued is not None and queued.pk != failed.pk and queued.pk not in seen:
        seen.add(queued.pk)
        queued = curation_services.review_queue_next(project=project, reviewer=expert, after_id=queued.pk)
    assert queued is not None and queued.pk == failed.pk
    curation_services.example_review(
        example=queued, reviewer=expert, version=queued.version, decision="approved", label="P1"
    )
    assert failed.reviews.count() == 2


def test_an_evaluation_whose_worker_died_is_requeued(project, finished):
    from datetime import timedelta

    from django.utils import timezone

    from evaluation import services

    evaluation, _ = finished
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running", lease_until=timezone.now() - timedelta(1))
    assert services.evaluations_recover() == 1
    assert Evaluation.objects.get(pk=evaluation.pk).status == "queued"
    assert services.evaluations_recover() == 0


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_live_evaluation_leased(finished, settings):
    from django.utils import timezone

    from evaluation import services

    settings.FINELINE_EVALUATION_LEASE_SECONDS = 1
    evaluation, _ = finished
    with heartbeat_beating(Evaluation, evaluation.pk, "me:1"):
        assert services.evaluations_recover() == 0
        assert Evaluation.objects.get(pk=evaluation.pk).lease_until > timezone.now()
