"""The whole loop as a newcomer sees it after `make run`, in a real Chromium with a real Celery worker (both queues,
as `make run` starts it): log in, freeze a version of the demo, train tiny-local with the default preset, evaluate,
read the verdict. The fine-tune answers >= 95% of the test split in the format and beats the base model, zero-shot
and with its best prompt, on format accuracy. The time from login to verdict is printed (README: "The whole loop")."""

import io

import pytest
from django.core.management import call_command

from evaluation.models import Evaluation
from training.models import TrainingRun

from ..browser_helpers import newcomer_loop
from ..helpers import service_env, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_login_freeze_train_evaluate_verdict(browser, live_server, tmp_path):
    call_command("load_demo", stdout=io.StringIO())
    env = service_env(FINELINE_VAR_DIR=tmp_path)
    worker = start_worker(env, queues="default,gpu")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        trained, total = newcomer_loop(context, live_server.url)
    finally:
        context.close()
        output = stop_worker(worker)
    assert "Traceback" not in output, output
    run = TrainingRun.objects.get()
    evaluation = Evaluation.objects.get()
    results = {entry["system"]: entry["metrics"] for entry in evaluation.results if entry["status"] == "succeeded"}
    formats = ", ".join(f"{system} {values.get('format_accuracy')}" for system, values in results.items())
    print(f"\nnewcomer loop: trained after {trained:.0f} s, verdict after {total:.0f} s; format accuracy: {formats}")
    assert results["fine_tuned"]["format_accuracy"] >= 0.95
    for baseline in ("base_zero_shot", "base_best_prompt"):
        assert results["fine_tuned"]["format_accuracy"] > results[baseline]["format_accuracy"]
    assert evaluation.verdict["summary"].startswith("Fine-tuned")
    assert run.project.baseline_score is not None and run.project.tokenizer  # both fed back to the dashboard
