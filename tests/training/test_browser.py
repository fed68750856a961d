"""A lead launches a run in a real Chromium, watches it train live, and copies the deployment command."""

import threading

import pytest
from django.db import connection

from core import server_paths
from training import services
from training.models import TrainingRun

from ..browser_helpers import ARTIFACTS, log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_a_lead_launches_watches_and_deploys_a_run(
    browser, live_server, project, version, small_base, tmp_path, settings
):
    settings.VAR_DIR = tmp_path  # the server's data folder, for the worker and the pages alike
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = log_in(context, live_server.url, "lena", "pw-lena")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.click("[data-train]")
    page.wait_for_selector("[data-launch-form]")
    assert page.inner_text("[data-trainable]").startswith("65,536")  # tiny-local, LoRA r16 on attention

    # A preset fills the form and the pre-flight follows (htmx), without a reload.
    page.select_option("select[name=preset]", "lora-wide")
    assert page.input_value("input[name=lora_r]") == "64"
    page.wait_for_function("() => document.querySelector('[data-trainable]').textContent.trim().startsWith('753,664')")
    page.fill("input[name=base_model]", "meta-llama/Llama-3.1-8B-Instruct")
    page.select_option("select[name=method]", "full")
    assert page.is_hidden("[data-field=lora_r]")  # LoRA settings hide for a full fine-tune
    page.wait_for_selector("text=more than one H100")
    assert "8,030,261,248" in page.inner_text("[data-preflight]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "training-launch.png"), full_page=True)

    # Back to a local model that trains here, for a few steps; the data is not ready, so a reason is needed.
    page.select_option("select[name=preset]", "tiny-local-demo")
    page.fill("input[name=base_model]", small_base)
    page.fill("input[name=max_steps]", "60")
    page.fill("input[name=batch_size]", "8")
    page.click("[data-launch]")
    page.wait_for_selector("[data-override-error]")
    page.fill("textarea[name=override_readiness]", "Checking the pipeline end to end.")
    page.click("[data-launch]")
    page.wait_for_selector("[data-run-live][data-status=queued]")
    run = TrainingRun.objects.get()
    assert run.config["max_steps"] == 60 and run.config["lora_r"] == 16 and run.base_model == small_base

    def work():  # the worker's part, in a thread of this process
        try:
            services.training_run_execute(run_id=run.pk, worker="browser-test")
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        # The page polls the row: the curves fill in and the status moves on, with no reload.
        page.wait_for_function(
            "() => window.Chart && Chart.getChart('loss-chart').data.labels.length >= 5", timeout=120_000
        )
        page.wait_for_selector("[data-run-live][data-status=succeeded]", timeout=120_000)
    finally:
        worker.join(timeout=120)
    assert page.inner_text("[data-steps]") == "step 60 / 60"
    points = page.evaluate("Chart.getChart('loss-chart').data.datasets[0].data.length")
    assert points == 60
    assert page.evaluate("Chart.getChart('accuracy-chart').data.datasets[1].data.filter(v => v !== null).length") >= 1
    page.click("[data-copy-from='[data-vllm]']")
    page.wait_for_selector("text=Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    # the command as the page shows it: the run's folder relative to the data folder, never its absolute path
    assert copied == server_paths.redact(TrainingRun.objects.get().deployment["vllm_command"])
    assert "--enable-lora" in copied and "$FINELINE_VAR_DIR/runs/" in copied and str(tmp_path) not in copied
    assert page.inner_text("[data-artifact=adapter]").startswith("LoRA adapter (safetensors): download")
    assert page.evaluate("document.querySelector('pre.log').scrollTop") > 0  # the tail is in view
    page.screenshot(path=str(ARTIFACTS / "training-run.png"), full_page=True)
    context.close()
