"""The training pages: who sees and does what, the launch form's errors, the pre-flight, the live fragment."""

import pytest

from training.models import TrainingRun

pytestmark = pytest.mark.django_db

FORM = {
    "base_model": "tiny-local",
    "method": "lora",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.1,
    "lora_targets": "q_proj,k_proj,v_proj,o_proj",
    "epochs": 2,
    "learning_rate": 5e-3,
    "batch_size": 16,
    "gradient_accumulation": 1,
    "max_seq_length": 1024,
    "seed": 0,
}


def test_experts_see_runs_but_cannot_launch_and_outsiders_see_nothing(project, version, client, expert, outsider):
    url = f"/projects/{project.slug}/runs/"
    client.force_login(expert)
    page = client.get(url)
    assert page.status_code == 200 and b"data-launch-form" not in page.content
    assert client.post(url, {**FORM, "dataset_version": version.number}).status_code == 403
    assert client.post(url + "preflight/", FORM).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_the_preflight_shows_the_trainable_share_memory_and_gpus(project, version, client, lead):
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/runs/").content.decode()
    assert "data-launch-form" in page and "65,536" in page and "NOT READY" in page  # tiny-local's LoRA
    llama = {**FORM, "base_model": "meta-llama/Llama-3.1-8B-Instruct", "dataset_version": version.number}
    lora = client.post(f"/projects/{project.slug}/runs/preflight/", {**llama, "batch_size": 1}).content.decode()
    assert "13,631,488" in lora and "(0.17%)" in lora and "1 × H100 80GB" in lora
    full = client.post(
        f"/projects/{project.slug}/runs/preflight/",
        {**llama, "method": "full", "batch_size": 2, "max_seq_length": 2048},
    ).content.decode()
    assert "8,030,261,248 <strong data-trainable-share>(100%)" in full and "2 × H100 80GB" in full
    assert "more than one H100" in full
    steps = client.post(f"/projects/{project.slug}/runs/preflight/", {**FORM, "dataset_version": version.number})
    train = version.counts["train"]["total"]
    assert f"data-steps>{-(-2 * (train // 16))}<" in steps.content.decode()  # 2 epochs of train // 16 steps
    broken = client.post(f"/projects/{project.slug}/runs/preflight/", {**FORM, "lora_r": 0}).content.decode()
    assert "`lora_r` must be between 1 and 1024" in broken
    unknown = client.post(f"/projects/{project.slug}/runs/preflight/", {**FORM, "base_model": "nobody/nothing"})
    assert "unknown: its config.json is neither" in unknown.content.decode()


def test_launch_refuses_bad_settings_and_unready_data_without_a_reason(project, version, client, lead):
    client.force_login(lead)
    url = f"/projects/{project.slug}/runs/"
    bad = client.post(url, {**FORM, "dataset_version": version.number, "lora_r": 0, "override_readiness": "x"})
    assert bad.status_code == 400 and "must be between 1 and 1024" in bad.content.decode()
    unready = client.post(url, {**FORM, "dataset_version": version.number})
    assert unready.status_code == 400 and "give a written reason" in unready.content.decode()
    assert not TrainingRun.objects.exists()
    done = client.post(url, {**FORM, "dataset_version": version.number, "override_readiness": "Smoke test"})
    run = TrainingRun.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/projects/{project.slug}/runs/{run.pk}/"
    assert run.config["lora_targets"] == ["q_proj", "k_proj", "v_proj", "o_proj"] and run.config["epochs"] == 2.0
    assert run.readiness_override == "Smoke test" and run.created_by == lead
    full = client.post(url, {**FORM, "method": "full", "dataset_version": version.number, "override_readiness": "x"})
    assert full.status_code == 302 and "lora_r" not in TrainingRun.objects.first().config


def test_the_live_fragment_polls_while_active_and_shows_artifacts_when_done(project, version, client, lead):
    client.force_login(lead)
    client.post(
        f"/projects/{project.slug}/runs/", {**FORM, "dataset_version": version.number, "override_readiness": "x"}
    )
    run = TrainingRun.objects.get()
    url = f"/projects/{project.slug}/runs/{run.pk}/"
    live = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert live.startswith('\n<div id="run-live"') or 'id="run-live"' in live[:200]
    assert 'hx-trigger="every 2s"' in live and "data-cancel" in live and "<html" not in live
    assert f'data-confirm="Cancel run #{run.pk}?' in live  # asked first (static/confirm.js)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running",
        step=5,
        total_steps=10,
        device="cuda:0",
        metrics=[{"step": s, "loss": 2.0 / s, "token_accuracy": 0.1 * s, "elapsed": s * 0.5} for s in range(1, 6)],
    )
    live = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "step 5 / 10" in live and "ETA 3 s" in live and "cuda:0" in live and '"loss": [2.0, 1.0' in live
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        adapter_dir="/runs/run-1/adapter",
        deployment={"vllm_command": "vllm serve base --enable-lora", "ollama_modelfile": "FROM base\n", "folder": "/d"},
    )
    done = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done and "data-artifacts" in done and "vllm serve base --enable-lora" in done
    assert "data-merge" in done and "data-cancel" not in done
    full_page = client.get(url).content.decode()
    assert "loss-chart" in full_page and "65,536" in full_page  # the pre-flight's trainable count


def test_merge_and_cancel_from_the_page(project, version, client, lead, expert):
    client.force_login(lead)
    client.post(
        f"/projects/{project.slug}/runs/", {**FORM, "dataset_version": version.number, "override_readiness": "x"}
    )
    run = TrainingRun.objects.get()
    merge = client.post(f"/projects/{project.slug}/runs/{run.pk}/merge/", follow=True)
    assert "only a finished LoRA run has an adapter to merge" in merge.content.decode()
    client.force_login(expert)
    assert client.post(f"/projects/{project.slug}/runs/{run.pk}/cancel/").status_code == 403
    client.force_login(lead)
    client.post(f"/projects/{project.slug}/runs/{run.pk}/cancel/")
    assert TrainingRun.objects.get().status == "cancelled"


def test_the_api_names_a_bad_option(project, version, lead_api):
    url = f"/api/v1/projects/{project.slug}/training-runs/"
    body = {"dataset_version": version.number, "override_readiness": "x", "options": {"batch_size": "many"}}
    response = lead_api.post(url, body, format="json")
    assert response.status_code == 400 and response.json() == {
        "detail": "`batch_size` must be a whole number.",
        "field": "batch_size",
    }
    body["options"] = {"lora_targets": []}
    assert lead_api.post(url, body, format="json").json()["field"] == "lora_targets"


def test_the_api_preflight_creates_nothing(project, version, lead_api, expert_api):
    url = f"/api/v1/projects/{project.slug}/training-runs/preflight/"
    body = {"dataset_version": version.number, "base_model": "Qwen/Qwen2.5-7B-Instruct", "options": {"lora_r": 8}}
    assert expert_api.post(url, body, format="json").status_code == 403
    response = lead_api.post(url, body, format="json")
    figures = response.json()
    assert response.status_code == 200 and figures["total_params"] == 7_615_616_512
    assert figures["trainable_params"] == 28 * 8 * (2 * (3584 + 3584) + 2 * (3584 + 512))  # q, o, k, v at r=8
    assert figures["readiness"]["ready"] is False and figures["steps"] > 0 and figures["seconds"] > 0
    assert not TrainingRun.objects.exists()
