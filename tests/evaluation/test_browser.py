"""A lead starts an evaluation from a finished run in a real Chromium, watches it, and reads the verdict and charts."""

import threading

import pytest
from django.db import connection

from evaluation import services
from evaluation.models import Evaluation
from training import services as training_services

from ..browser_helpers import ARTIFACTS, log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_a_lead_evaluates_a_run_and_reads_the_verdict(
    browser, live_server, project, lead, version, small_base, tmp_path, settings
):
    settings.VAR_DIR = tmp_path  # the server's data folder: the evaluation finds the run's adapter there
    run = training_services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base,
        options={"max_steps": 30, "batch_size": 8}, override_readiness="browser test",
    )  # fmt: skip
    run = training_services.training_run_execute(run_id=run.pk)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = log_in(context, live_server.url, "lena", "pw-lena")
    page.goto(f"{live_server.url}/projects/{project.slug}/runs/{run.pk}/")
    page.click("[data-evaluate-run]")
    page.wait_for_selector("[data-evaluate-form]")
    assert page.input_value("select[name=training_run]") == str(run.pk)
    page.uncheck("input[name=systems][value=frontier]")
    page.click("[data-evaluate]")
    page.wait_for_selector("[data-evaluation-live][data-status=queued]")
    evaluation = Evaluation.objects.get()
    assert evaluation.systems == ["fine_tuned", "base_zero_shot", "base_best_prompt", "embedding_classifier"]

    def work():
        try:
            services.evaluation_execute(evaluation_id=evaluation.pk, worker="browser-test")
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        page.wait_for_selector("[data-verdict]", timeout=180_000)  # the page reloads itself when it is done
    finally:
        worker.join(timeout=180)
    verdict = page.inner_text("[data-verdict]")
    assert verdict == Evaluation.objects.get().verdict["summary"] and verdict.startswith("Fine-tuned")
    assert page.locator("[data-results] tbody tr").count() == 5  # the 4 systems and the majority-label row
    assert page.locator("[data-comparisons] tbody tr").count() >= 3 and page.inner_text("[data-verdict-n]")
    assert "★" in page.inner_text("[data-results]")
    bars = page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-metric]')).map(c => Chart.getChart(c).data.labels.length)"
    )
    assert bars and all(count >= 3 for count in bars)
    assert page.evaluate("Chart.getChart('run-loss-chart').data.labels.length") == 30
    page.wait_for_selector("[data-examples] article")
    shown = page.locator("[data-examples] article").count()
    page.check("[data-failures-only]")
    page.wait_for_function(
        "(shown) => document.querySelectorAll('[data-examples] article.failed').length > 0 || shown == 0", arg=shown
    )
    assert page.locator("[data-examples] article:not(.failed)").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluation.png"), full_page=True)
    context.close()
