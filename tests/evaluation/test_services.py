"""Evaluations through the services and the API, on a run trained here for a few steps; the frontier model and the
judge are a local OpenAI-compatible server reached over HTTP by the real `openai` client."""

import copy
import json
from pathlib import Path

import pytest
from django.test import override_settings

from curation.models import DatasetVersionItem
from evaluation import services
from evaluation.harness import JUDGE_RUBRIC
from evaluation.models import Evaluation, PromptVariant
from training import services as training_services
from training.models import TrainingRun

from .openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
FRONTIER_ANSWER = "SEVERITY: P2\nIMPACT: one team\nACTION: Ask Priya to look"


@pytest.fixture
def trained_run(project, lead, version, small_base, tmp_path, settings):
    settings.VAR_DIR = tmp_path  # the server's data folder, where the evaluation finds the run's adapter
    run = training_services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 4, "batch_size": 8},
        override_readiness="test",
    )
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
    assert list(results) == [
        "fine_tuned", "base_zero_shot", "base_best_prompt", "frontier", "embedding_classifier", "majority_label"
    ]  # fmt: skip
    frontier = results["frontier"]["metrics"]
    assert frontier["format_accuracy"] == 1.0 and frontier["content_relevance"] == 5.0
    assert frontier["hallucination_rate"] == 1.0  # every answer names Priya, whom no source mentions
    assert frontier["cost_per_query_usd"] == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)
    assert results["fine_tuned"]["methods"] == {"relevance": "LLM judge, 1-5", "hallucination": "LLM judge"}
    assert results["embedding_classifier"]["metrics"]["content_relevance"] is None
    # 4 steps on a barely pretrained model: the frontier model wins on format, and the verdict says so, with the
    # difference's interval.
    assert evaluation.verdict["beats_all"] is False and evaluation.verdict["outcome"] == "loses"
    assert "Frontier model on format accuracy (" in evaluation.verdict["summary"]
    assert "95% CI" in evaluation.verdict["summary"] and evaluation.verdict["n"] == tests
    label_rows = {c["baseline"] for c in evaluation.verdict["comparisons"] if c["metric"] == "label_accuracy"}
    assert {"embedding_classifier", "majority_label"} <= label_rows  # the demo's answers state their label
    generated = [s for s in results if s not in ("embedding_classifier", "majority_label")]
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


def test_a_full_fine_tune_is_evaluated_from_its_own_folder(project, lead, version, small_base, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    run = training_services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base, method="full",
        options={"max_steps": 2, "batch_size": 8}, override_readiness="test",
    )  # fmt: skip
    run = training_services.training_run_execute(run_id=run.pk)
    # As a tiny-local run records it: the name, not a folder; the base is found beside the model.
    run.base_model = "tiny-local"
    run.save(update_fields=["base_model"])
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=run, systems=["fine_tuned", "base_zero_shot"]
    )
    evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    results = {entry["system"]: entry for entry in evaluation.results}
    assert list(results) == ["fine_tuned", "base_zero_shot", "majority_label"]  # the last, a reference row, no model
    assert [entry["status"] for entry in results.values()] == ["succeeded"] * 3, evaluation.results
    assert results["fine_tuned"]["merged"] is None  # no adapter: the model itself


def free_form_version(lead, lead_api, *, labels: list[str]):
    """A project whose answers are prose: no output format; the labels (if any) kept beside the answers, never in
    them. 120 demo tickets, the answer's SEVERITY line dropped, frozen into v1."""
    from curation import demo
    from curation import services as curation_services
    from curation.models import Example

    from ..helpers import jsonl, post_jsonl

    project = curation_services.project_create(
        creator=lead, name="Free answers", slug="free", labels=labels, system_prompt="You are a support agent."
    )
    rows = [copy.deepcopy(row) for row in demo.generate(count=120)]  # exact duplicates are one object there
    for row in rows:
        row["messages"][0]["content"] = "You are a support agent."
        row["messages"][2]["content"] = row["messages"][2]["content"].split("\n", 1)[1]  # no SEVERITY: Px
        if not labels:
            del row["label"]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return project, curation_services.dataset_version_freeze(project=project, user=lead)


def test_a_free_form_task_is_judged_on_chrf_and_similarity_with_an_interval_for_each_comparison(
    lead, lead_api, small_base, tmp_path, settings
):
    settings.VAR_DIR = tmp_path
    project, version = free_form_version(lead, lead_api, labels=[])
    run = training_services.training_run_create(
        project=project, user=lead, dataset_version=version, base_model=small_base,
        options={"max_steps": 4, "batch_size": 8}, override_readiness="test",
    )  # fmt: skip
    run = training_services.training_run_execute(run_id=run.pk)
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=run, systems=["fine_tuned", "base_zero_shot", "embedding_classifier"]
    )
    assert evaluation.primary_metrics == ["chrf", "content_relevance"]  # chosen from the task's shape
    with override_settings(FINELINE_EVAL_MAX_NEW_TOKENS=48):
        evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    assert evaluation.status == "succeeded", evaluation.error
    tests = version.items.filter(split="test").count()
    results = {entry["system"]: entry for entry in evaluation.results}
    assert "majority_label" not in results and results["embedding_classifier"]["status"] == "not_applicable"
    for system in ("fine_tuned", "base_zero_shot"):
        values = results[system]["metrics"]
        assert values["label_accuracy"] is None and values["macro_f1"] is None  # not 0: it does not apply
        assert 0 <= values["chrf"] <= 100 and -1 <= values["content_relevance"] <= 1
    verdict = evaluation.verdict
    assert verdict["task_shape"] == "free-form" and verdict["n"] == tests
    assert "chrF against the reference answers" in verdict["primary_reason"]
    assert "embedding similarity (no judge configured)" in verdict["primary_reason"]
    assert verdict["outcome"] in ("beats_all", "loses", "inconclusive", "no_signal")
    assert verdict["beats_all"] is (verdict["outcome"] == "beats_all")
    compared = {(c["baseline"], c["metric"]) for c in verdict["comparisons"]}
    assert compared == {("base_zero_shot", "chrf"), ("base_zero_shot", "content_relevance")}
    for c in verdict["comparisons"]:
        assert c["ci_low"] <= c["difference"] <= c["ci_high"] and c["n"] == tests
        exact = c["p_value"] is None or c["p_value"] < 0.05  # accuracies also pass the exact McNemar test
        assert c["significant"] is ((c["ci_low"] > 0 or c["ci_high"] < 0) and exact)
        assert c["better"] is (None if not c["significant"] else c["difference"] > 0)
    if verdict["outcome"] == "inconclusive":
        assert verdict["summary"].startswith("Fine-tuned: inconclusive") and verdict["to_conclude"]
    answers = evaluation.answers.filter(system="fine_tuned")
    assert answers.count() == tests and not answers.filter(label_ok__isnull=False).exists()
    assert not answers.filter(chrf__isnull=True).exists()


def test_labels_kept_beside_free_answers_are_left_to_the_classifier_and_the_majority_row(
    lead, lead_api, monkeypatch, tmp_path, settings
):
    from evaluation import harness

    settings.VAR_DIR = tmp_path
    project, version = free_form_version(lead, lead_api, labels=["P1", "P2", "P3", "P4"])
    run = TrainingRun.objects.create(
        project=project, dataset_version=version, created_by=lead, base_model="tiny-local", method="full",
        status="succeeded",
    )  # fmt: skip
    model = tmp_path / "runs" / f"run-{run.pk}" / "final"  # a full fine-tune of tiny-local, as a worker leaves it
    model.mkdir(parents=True)
    (model / "fineline_config.json").write_text(json.dumps({"base_model": str(tmp_path / "models" / "tiny-local-0")}))
    run.adapter_dir = str(model)
    run.save(update_fields=["adapter_dir"])
    test = list(version.items.filter(split="test").order_by("id"))
    reference = {item.messages[1]["content"]: item.messages[2]["content"] for item in test}

    def answers(model, conversations, **options):  # the fine-tune says what the expert said; the base model, nothing
        tuned = model == str(Path(run.adapter_dir).resolve())
        said = [reference[c[-1]["content"]] if tuned else "I cannot help with that." for c in conversations]
        return harness.Answers(said, [5.0] * 10 if tuned else [50.0] * 10, 100.0)

    monkeypatch.setattr(harness, "local_answers", answers)
    evaluation = services.evaluation_create(
        project=project, user=lead, training_run=run, systems=["fine_tuned", "base_zero_shot", "embedding_classifier"]
    )
    evaluation = services.evaluation_execute(evaluation_id=evaluation.pk)
    assert evaluation.status == "succeeded", evaluation.error
    results = {entry["system"]: entry for entry in evaluation.results}
    assert list(results) == ["fine_tuned", "base_zero_shot", "embedding_classifier", "majority_label"]
    assert results["fine_tuned"]["metrics"]["label_accuracy"] is None  # the answers never state a label
    assert results["fine_tuned"]["metrics"]["chrf"] == 100.0
    assert results["embedding_classifier"]["metrics"]["label_accuracy"] is not None
    majority = results["majority_label"]
    train = list(version.items.filter(split="train").values_list("label", flat=True))
    most = max(sorted(set(train)), key=train.count)
    share = sum(1 for item in test if item.label == most) / len(test)
    assert majority["metrics"]["label_accuracy"] == pytest.approx(share, abs=1e-6) and most in majority["notes"]
    verdict = evaluation.verdict
    assert evaluation.primary_metrics == ["chrf", "content_relevance"] and verdict["task_shape"] == "free-form"
    assert "labelled reference answers state their label" in verdict["primary_reason"]
    # Perfect answers against "I cannot help with that.": every interval excludes 0.
    assert verdict["outcome"] == "beats_all" and verdict["summary"].startswith("Fine-tuned beats all baselines")
    assert f"({len(test)} test examples)" in verdict["summary"] and verdict["n"] == len(test)
    assert all(c["significant"] and c["better"] for c in verdict["comparisons"])
    assert verdict["best"]["chrf"] == "fine_tuned" and verdict["best"]["latency_p50_ms"] is not None
    # Label accuracy chosen at launch: not for generated answers here; the classifier against the majority decides.
    chosen = services.evaluation_create(
        project=project, user=lead, training_run=run, systems=["fine_tuned", "embedding_classifier"],
        primary_metrics=["label_accuracy"],
    )  # fmt: skip
    chosen = services.evaluation_execute(evaluation_id=chosen.pk)
    assert chosen.verdict["outcome"] == "no_signal" and chosen.verdict["comparisons"] == []
    assert chosen.verdict["primary_reason"].startswith("Chosen at launch. For this free-form task the default is chrF")
    assert "Left out: label accuracy (does not apply to generated answers" in chosen.verdict["summary"]
