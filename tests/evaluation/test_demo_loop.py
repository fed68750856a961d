"""The whole loop on the demo, on the CPU as `make run` serves it: freeze the reviewed tickets, train tiny-local with
the demo preset (the adapter answers the test split in the project's format, >= 95%), then evaluate it against the
baselines: the fine-tune beats the base model zero-shot and with its best prompt on format accuracy."""

import io
import json
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from curation import formats
from curation import services as curation_services
from curation.models import Project
from evaluation import services as evaluation_services
from training import services
from training.presets import PRESETS
from training.recipes import sft

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_freeze_train_evaluate_and_the_verdict(tmp_path):
    call_command("load_demo", stdout=io.StringIO())
    project = Project.objects.get(slug="support-triage")
    lead = project.memberships.get(role="lead").user
    version = curation_services.dataset_version_freeze(project=project, user=lead)
    preset = PRESETS["tiny-local-demo"]
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model="tiny-local",
        method=preset["method"],
        options=preset["options"],
        override_readiness="The demo has only a fifth of its tickets reviewed.",
    )
    started = time.monotonic()
    with override_settings(VAR_DIR=tmp_path):
        done = services.training_run_execute(run_id=run.pk)
    trained_in = time.monotonic() - started
    assert done.status == "succeeded", done.error
    losses = [entry["loss"] for entry in done.metrics]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 * 0.5

    adapter_config = json.loads((Path(done.adapter_dir) / "adapter_config.json").read_text())
    model, tokenizer = sft.load_for_inference(adapter_config["base_model_name_or_path"], done.adapter_dir)
    test = list(version.items.filter(split="test").values_list("messages", flat=True))
    answers = sft.generate(model, tokenizer, [messages[:-1] for messages in test])
    fits = formats.answer_checker(project.output_format)
    accuracy = sum(map(fits, answers)) / len(answers)
    print(f"\ndemo run: {done.step} steps in {trained_in:.0f} s (build included), format {accuracy:.1%} on {len(test)}")
    assert len(test) >= 20 and accuracy >= 0.95, answers[:5]

    started = time.monotonic()
    evaluation = evaluation_services.evaluation_create(project=project, user=lead, training_run=done)
    with override_settings(VAR_DIR=tmp_path):
        evaluation = evaluation_services.evaluation_execute(evaluation_id=evaluation.pk)
    evaluated_in = time.monotonic() - started
    assert evaluation.status == "succeeded", evaluation.error
    results = {entry["system"]: entry for entry in evaluation.results}
    print(f"evaluation in {evaluated_in:.0f} s: " + ", ".join(f"{k}={v['metrics']}" for k, v in results.items()))
    assert results["frontier"]["status"] == "not_configured"
    tuned = results["fine_tuned"]["metrics"]
    for baseline in ("base_zero_shot", "base_best_prompt"):
        assert tuned["format_accuracy"] > results[baseline]["metrics"]["format_accuracy"], results[baseline]
    assert tuned["format_accuracy"] >= 0.95 and tuned["latency_p95_ms"] > 0 and tuned["cost_per_query_usd"] > 0
    assert results["embedding_classifier"]["metrics"]["label_accuracy"] is not None
    assert results["embedding_classifier"]["metrics"]["format_accuracy"] is None
    assert "fallback" in results["fine_tuned"]["methods"]["relevance"]
    assert evaluation.answers.filter(system="fine_tuned").count() == len(test)
    assert evaluation.done == evaluation.total > 0
    summary = evaluation.verdict["summary"]
    assert summary.startswith("Fine-tuned") and "Not compared: Frontier model" in summary
    project.refresh_from_db()
    assert project.baseline_score is not None and project.baseline_score < 0.9
