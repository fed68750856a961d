"""Evaluations through the services and the API, on a run trained here for a few steps; the frontier model and the
judge are a local OpenAI-compatible server reached over HTTP by the real `openai` client."""

import json

import pytest
from django.test import override_settings

from curation.models import DatasetVersionItem
from evaluation import services
from evaluation.harness import JUDGE_RUBRIC
from evaluation.models import Evaluation, PromptVariant
from training import services as training_services

from .openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
FRONTIER_ANSWER = "SEVERITY: P2\nIMPACT: one team\nACTION: Ask Priya to look"


@pytest.fixture
def trained_run(project, lead, version, small_base, tmp_path):
    run = training_services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 4, "batch_size": 8},
        override_readiness="test",
    )
    with override_settings(VAR_DIR=tmp_path):
        return training_services.training_run_execute(run_id=run.pk)


def reply(body):
    if body["messages"][0]["content"] == JUDGE_RUBRIC:
        answer = body["messages"][1]["content"].split("ANSWER:\n", 1)[1]
        claims = ["Priya"] if "Priya" in answer else []
        return json.dumps({"relevance": 5 if "SEVERITY" in answer else 2, "unsupported_claims": claims}), 300, 20
    return FRONTIER_ANSWER, 120, 30


def test_every_system_answers_is_scored_and_the_verdict_names_the_loss(project, lead, trained_run):
    with OpenAIServer(reply) as server:
        settings = {
            "FINELINE_FRONTIER_BASE_URL": server.url,
            "FINELINE_FRONTIER_MODEL": "frontier-test",
            "FINELINE_JUDGE_BASE_URL": server.url,
            "FINELINE_JUDGE_MODEL": "judge-test",
        }
        with override_settings(**settings):
            evaluation = services.evaluation_create(project=project, user=lead, training_run=trained_run)
            evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    assert evaluation.status == "succeeded", evaluation.error
    tests = DatasetVersionItem.objects.filter(version=trained_run.dataset_version, split="test").count()
    results = {entry["system"]: entry for entry in evaluation.results}
    assert list(results) == ["fine_tuned", "base_zero_shot", "base_best_prompt", "frontier", "embedding_classifier"]
    frontier = results["frontier"]["metrics"]
    assert frontier["format_accuracy"] == 1.0 and frontier["content_relevance"] == 5.0
    assert frontier["hallucination_rate"] == 1.0  # every answer names Priya, whom no source mentions
    assert frontier["cost_per_query_usd"] == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)
    assert results["fine_tuned"]["methods"] == {"relevance": "LLM judge, 1-5", "hallucination": "LLM judge"}
    assert results["embedding_classifier"]["metrics"]["content_relevance"] is None
    # 4 steps on a barely pretrained model: the frontier model wins on format, and the verdict says so.
    assert evaluation.verdict["beats_all"] is False
    assert "Frontier model on format accuracy (" in evaluation.verdict["summary"]
    generated = [s for s in results if s != "embedding_classifier"]
    judged = [b for b in server.requests if b["model"] == "judge-test"]
    assert len(judged) == tests * len(generated)
    assert len([b for b in server.requests if b["model"] == "frontier-test"]) == tests
    assert evaluation.answers.count() == tests * 5 and evaluation.done == evaluation.total == tests * 9
    project.refresh_from_db()
    assert project.baseline_score is not None


def test_without_endpoints_the_frontier_is_not_configured_and_fallbacks_are_labelled(project, lead, trained_run):
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=trained_run, systems=["fine_tuned", "frontier"]
    )
    evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    results = {entry["system"]: entry for entry in evaluation.results}
    assert results["frontier"]["status"] == "not_configured" and results["frontier"]["metrics"] == {}
    assert results["fine_tuned"]["methods"]["relevance"].startswith("fallback: embedding cosine")
    assert "Not compared: Frontier model" in evaluation.verdict["summary"]
    assert services.evaluation_execute(evaluation_id=evaluation.pk) is None  # finished: not run again


def test_the_best_prompt_variant_is_chosen_on_validation_and_test_examples_are_never_shown(project, lead, trained_run):
    version = trained_run.dataset_version
    train_ids = list(version.items.filter(split="train").values_list("example_id", flat=True)[:2])
    test_id = version.items.filter(split="test").values_list("example_id", flat=True).first()
    services.prompt_variant_save(project=project, user=lead, name="plain", system_prompt="Answer.", few_shot=[])
    shots = services.prompt_variant_save(
        project=project, user=lead, name="shots", system_prompt="Triage.", few_shot=[*train_ids, test_id, train_ids[0]]
    )
    assert shots.few_shot == [*train_ids, test_id]  # once each
    with pytest.raises(services.ServiceError, match="exists already"):
        services.prompt_variant_save(project=project, user=lead, name="plain", system_prompt="", few_shot=[])
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=trained_run, systems=["fine_tuned", "base_best_prompt"]
    )
    evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    best = {entry["system"]: entry for entry in evaluation.results}["base_best_prompt"]
    assert "best of 2 variants on the validation split" in best["notes"]
    assert all(v.last_score is not None for v in PromptVariant.objects.filter(project=project))
    if best["prompt"]["name"] == "shots":
        assert "1 outside the training split left out" in best["notes"]
    assert "validation examples" in evaluation.log


def test_launch_rules_and_the_api(project, lead, version, trained_run, lead_api, expert_api, outsider_api):
    queued = training_services.training_run_create(
        project=project, user=lead, dataset_version=version, override_readiness="x"
    )
    with pytest.raises(services.ServiceError, match="only a run that succeeded"):
        services.evaluation_create(project=project, user=lead, training_run=queued)
    url = f"/api/v1/projects/{project.slug}/evaluations/"
    assert lead_api.post(url, {"training_run": trained_run.pk, "systems": ["nope"]}, format="json").status_code == 400
    assert expert_api.post(url, {"training_run": trained_run.pk}, format="json").status_code == 403
    created = lead_api.post(url, {"training_run": trained_run.pk, "systems": ["fine_tuned"]}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued"
    pk = created.json()["id"]
    services.evaluation_execute(evaluation_id=pk)
    body = expert_api.get(f"{url}{pk}/").json()
    assert body["status"] == "succeeded" and body["results"][0]["system"] == "fine_tuned"
    assert set(body["results"][0]["metrics"]) >= {"format_accuracy", "label_accuracy", "latency_p95_ms"}
    assert "summary" in body["verdict"] and body["progress"]["done"] == body["progress"]["total"]
    answers = expert_api.get(f"{url}{pk}/answers/?limit=2").json()
    assert len(answers) == 2 and "fine_tuned" in answers[0]["answers"] and answers[0]["reference"]
    assert outsider_api.get(f"{url}{pk}/").status_code == 404
    assert Evaluation.objects.filter(project=project).count() == 1


def test_a_full_fine_tune_is_evaluated_from_its_own_folder(project, lead, version, small_base, tmp_path):
    run = training_services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base, method="full",
        options={"max_steps": 2, "batch_size": 8}, override_readiness="test",
    )  # fmt: skip
    with override_settings(VAR_DIR=tmp_path):
        run = training_services.training_run_execute(run_id=run.pk)
    # As a tiny-local run records it: the name, not a folder; the base is found beside the model.
    run.base_model = "tiny-local"
    run.save(update_fields=["base_model"])
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=run, systems=["fine_tuned", "base_zero_shot"]
    )
    evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    results = {entry["system"]: entry for entry in evaluation.results}
    assert [entry["status"] for entry in results.values()] == ["succeeded", "succeeded"], evaluation.results
    assert results["fine_tuned"]["merged"] is None  # no adapter: the model itself
