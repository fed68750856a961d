"""The demo, end to end on the CPU as `make run` serves it: freeze the reviewed tickets, train tiny-local with the
demo preset, and the adapter answers the test split in the project's format (>= 95%)."""

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
from training import services
from training.presets import PRESETS
from training.recipes import sft

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_demo_preset_teaches_tiny_local_the_format(tmp_path):
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
