"""Finding High 1 of the security round: a lead of one project must not reach another project's data through a
run's base model (its adapter, its tiny-local build, the data folder), nor see the server's absolute paths, nor
download another project's artifacts.

The attacker leads project `mine`; the victim is project `triage` (the fixtures' project), whose finished run left
an adapter and a tiny-local build in the data folder, each with a config.json the pre-flight would read."""

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.test import Client

from curation import demo, services
from curation.models import Example
from evaluation import harness
from evaluation import services as evaluation_services
from training import services as training_services
from training.models import TrainingRun
from training.recipes import estimate

from ..helpers import jsonl, post_jsonl
from ..training.test_views import FORM as LAUNCH_FORM

pytestmark = pytest.mark.django_db

# A config.json whose parameter count could only come from reading it.
CONFIG = {
    "hidden_size": 96,
    "intermediate_size": 160,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "vocab_size": 1234,
    "tie_word_embeddings": True,
}
SECRET_PARAMS = f"{estimate.Shape.from_config(CONFIG).total_params():,}"
# The launch form as tests/training/test_views.py fills it, with the base model left for each attack.
FORM = {**{key: value for key, value in LAUNCH_FORM.items() if key != "base_model"}, "override_readiness": "attack"}


def model_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(CONFIG))
    return path


@pytest.fixture
def server(tmp_path, settings):
    """The data folder and the administrator's models folder, apart; one allowed model in the latter."""
    settings.VAR_DIR = tmp_path / "var"
    settings.FINELINE_MODELS_DIR = str(tmp_path / "models")
    model_folder(tmp_path / "models" / "allowed")
    return tmp_path


@pytest.fixture
def victim_run(server, project, lead, version):
    """The victim's finished LoRA run: an adapter (with a tokenizer and a config.json) in its run folder, built
    from a tiny-local base in the data folder, a deployment bundle, a merged model."""
    from training import bundle

    run = TrainingRun.objects.create(
        project=project, dataset_version=version, created_by=lead, base_model="tiny-local", status="succeeded"
    )
    folder = server / "var" / "runs" / f"run-{run.pk}"
    tiny = model_folder(server / "var" / "models" / "tiny-local-0123456789abcdef")
    adapter = model_folder(folder / "final")
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 16, "base_model_name_or_path": str(tiny)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"victim weights " * 1000)
    (adapter / "fineline_config.json").write_text(json.dumps({"base_model": str(tiny)}))
    merged = model_folder(folder / "merged")
    (merged / "model.safetensors").write_bytes(b"merged weights")
    deployment = bundle.write(
        out_dir=folder, base_model=str(tiny), adapter_dir=adapter, name="triage-run", max_model_len=1024,
        system_prompt="You are a support agent.",
    )  # fmt: skip
    deployment.update(
        bundle.write_merged(
            out_dir=folder, merged_dir=merged, max_model_len=1024, system_prompt="You are a support agent."
        )
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        output_dir=str(folder), adapter_dir=str(adapter), merged_dir=str(merged), merge_status="done",
        deployment=deployment, log=f"merge failed: OSError: {adapter}/missing does not exist\n",
        error=f"an earlier attempt: FileNotFoundError: {tiny}/tokenizer.json",
    )  # fmt: skip
    run.refresh_from_db()
    return run


@pytest.fixture
def mine(outsider, outsider_api):
    """The attacker's own project, which they lead, with a frozen version."""
    project = services.project_create(creator=outsider, name="Mine", slug="mine", labels=demo.LABELS)
    assert post_jsonl(outsider_api, "mine", jsonl(demo.generate(count=60))).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return project, services.dataset_version_freeze(project=project, user=outsider)


def attacks(server, run) -> dict[str, str]:
    adapter = Path(run.adapter_dir)
    (server / "models" / "innocent").symlink_to(adapter, target_is_directory=True)
    return {
        "the victim's adapter": str(adapter),
        "the victim's tiny-local build": str(server / "var" / "models" / "tiny-local-0123456789abcdef"),
        "the data folder": str(server / "var"),
        "a run folder by its id": str(server / "var" / "runs" / f"run-{run.pk}"),
        "`..` out of the models folder": f"{server}/models/../var/runs/run-{run.pk}/final",
        "a symbolic link in the models folder": str(server / "models" / "innocent"),
        "the home folder": "~/.cache",
        "a relative path": f"../var/runs/run-{run.pk}/final",
    }


def test_a_lead_cannot_point_a_run_at_another_projects_folders(
    server, victim_run, mine, outsider, outsider_api, client
):
    project, version = mine
    client.force_login(outsider)
    for what, value in attacks(server, victim_run).items():
        page = client.post(
            f"/projects/{project.slug}/runs/", {**FORM, "dataset_version": version.number, "base_model": value}
        )
        assert page.status_code == 400, what
        assert "field-error" in page.content.decode(), what
        body = {"dataset_version": version.number, "base_model": value, "override_readiness": "attack"}
        response = outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json")
        assert response.status_code == 400 and response.json()["field"] == "base_model", (what, response.json())
        preflight = outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/preflight/", body, format="json")
        assert preflight.status_code == 400 and SECRET_PARAMS.replace(",", "") not in preflight.content.decode(), what
    assert not TrainingRun.objects.filter(project=project).exists()


def test_a_path_that_is_a_folder_relative_to_the_worker_is_not_a_hub_id(
    server, victim_run, mine, outsider_api, monkeypatch
):
    project, version = mine
    monkeypatch.chdir(server / "var")  # transformers would load ./runs/run-N before asking the Hub
    body = {"dataset_version": version.number, "base_model": f"runs/run-{victim_run.pk}", "override_readiness": "x"}
    response = outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json")
    assert response.status_code == 400 and "path on the server" in response.json()["detail"]


def test_without_a_models_folder_no_local_folder_is_accepted(server, mine, outsider_api, settings):
    project, version = mine
    settings.FINELINE_MODELS_DIR = ""
    body = {
        "dataset_version": version.number,
        "base_model": str(server / "models" / "allowed"),
        "override_readiness": "x",
    }
    response = outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json")
    assert response.status_code == 400 and "FINELINE_MODELS_DIR" in response.json()["detail"]


def test_listed_models_hub_ids_and_the_models_folder_are_still_accepted(server, mine, outsider_api):
    project, version = mine
    url = f"/api/v1/projects/{project.slug}/training-runs/"
    for value in ["tiny-local", "Qwen/Qwen2.5-7B-Instruct", "gpt2", str(server / "models" / "allowed")]:
        body = {"dataset_version": version.number, "base_model": value, "override_readiness": "x"}
        response = outsider_api.post(url, body, format="json")
        assert response.status_code == 201, (value, response.json())


def test_the_preflight_reads_the_config_of_an_allowed_folder_only(server, victim_run, mine, outsider, client):
    project, version = mine
    client.force_login(outsider)
    url = f"/projects/{project.slug}/runs/preflight/"
    allowed = client.post(url, {**FORM, "base_model": str(server / "models" / "allowed")}).content.decode()
    assert SECRET_PARAMS in allowed  # the same config.json, read where it may be
    for what, value in attacks(server, victim_run).items():
        page = client.post(url, {**FORM, "base_model": value}).content.decode()
        assert SECRET_PARAMS not in page and "data-total-params" not in page, what
        assert "This run cannot start" in page, what
    # an existing folder and a missing one outside the models folder get the same answer: no existence oracle
    elsewhere = model_folder(server / "elsewhere")
    found = client.post(url, {**FORM, "base_model": str(elsewhere)}).content.decode()
    missing = client.post(url, {**FORM, "base_model": str(server / "nowhere")}).content.decode()
    assert found.replace("elsewhere", "X") == missing.replace("nowhere", "X")


def test_the_worker_checks_a_row_again_and_loads_nothing_else(server, victim_run, mine, outsider, monkeypatch):
    """A row written before the check (or edited in the database) names the victim's adapter: the run fails with
    the reason, before any model is loaded."""
    from training.recipes import sft

    project, version = mine
    loaded = []
    monkeypatch.setattr(sft, "run", lambda config, *args, **kwargs: loaded.append(config.base_model))
    run = TrainingRun.objects.create(
        project=project, dataset_version=version, created_by=outsider, base_model=victim_run.adapter_dir
    )
    with pytest.raises(Exception, match="not a folder under the models folder"):
        training_services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "not a folder under the models folder" in run.error and loaded == []
    assert str(server) not in run.error


def test_an_evaluation_or_a_merge_of_such_a_row_loads_nothing_of_the_victim(
    server, victim_run, mine, outsider, monkeypatch
):
    """The attack of the report: a run of one's own project whose base (or adapter) is the victim's, evaluated."""
    from training.recipes import sft

    project, version = mine
    loaded = []

    def answers(model, conversations, adapter_dir=None, **options):
        loaded.append((model, adapter_dir))
        return harness.Answers(["SEVERITY: P1"] * len(conversations))

    monkeypatch.setattr(harness, "local_answers", answers)
    monkeypatch.setattr(sft, "merge_adapter", lambda *args: loaded.append(args))
    own = server / "var" / "runs" / "run-999999" / "final"  # not this run's folder either
    for base_model, adapter_dir in [
        (str(server / "var" / "models" / "tiny-local-0123456789abcdef"), victim_run.adapter_dir),
        ("tiny-local", victim_run.adapter_dir),
        ("tiny-local", str(own)),
    ]:
        run = TrainingRun.objects.create(
            project=project, dataset_version=version, created_by=outsider, base_model=base_model,
            adapter_dir=adapter_dir, status="succeeded",
        )  # fmt: skip
        evaluation = evaluation_services.evaluation_create(
            project=project, user=outsider, training_run=run, systems=["fine_tuned", "base_zero_shot"], enqueue=False
        )
        with pytest.raises(Exception):  # noqa: B017 - the evaluation fails, whatever the exception's type
            evaluation_services.evaluation_execute(evaluation_id=evaluation.pk)
        evaluation.refresh_from_db()
        assert evaluation.status == "failed" and str(server) not in evaluation.error
        TrainingRun.objects.filter(pk=run.pk).update(merge_status="queued")
        with pytest.raises(Exception):  # noqa: B017
            training_services.training_run_merge_execute(run_id=run.pk)
        assert TrainingRun.objects.get(pk=run.pk).merge_status == "failed"
    assert loaded == []


def test_pages_and_api_answers_show_no_server_path(server, victim_run, project, lead, lead_api, client):
    client.force_login(lead)
    url = f"/projects/{project.slug}/runs/{victim_run.pk}/"
    answers = {
        "page": client.get(url).content.decode(),
        "fragment": client.get(url, headers={"HX-Request": "true"}).content.decode(),
        "list page": client.get(f"/projects/{project.slug}/runs/").content.decode(),
        "api detail": lead_api.get(f"/api/v1/projects/{project.slug}/training-runs/{victim_run.pk}/").content.decode(),
        "api list": lead_api.get(f"/api/v1/projects/{project.slug}/training-runs/").content.decode(),
    }
    roots = {str(server), str(server.resolve())}
    for what, text in answers.items():
        assert not any(root in text for root in roots), what
    assert "data-artifacts" in answers["page"] and "$FINELINE_VAR_DIR/runs/run-" in answers["page"]
    detail = json.loads(answers["api detail"])
    assert detail["adapter_dir"] == f"$FINELINE_VAR_DIR/runs/run-{victim_run.pk}/final"
    assert {artifact["name"] for artifact in detail["artifacts"]} == {"adapter", "merged"}
    assert "ADAPTER $FINELINE_VAR_DIR/runs/" in detail["deployment"]["ollama_modelfile"]


def test_the_project_tokenizer_follows_the_same_rule(server, victim_run, mine, project, outsider, outsider_api, client):
    mine_project, _ = mine
    tiny = str(server / "var" / "models" / "tiny-local-0123456789abcdef")
    response = outsider_api.patch(f"/api/v1/projects/{mine_project.slug}/", {"tokenizer": tiny}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "tokenizer"
    client.force_login(outsider)
    client.post(f"/projects/{mine_project.slug}/settings/", {"tokenizer": victim_run.adapter_dir})
    mine_project.refresh_from_db()
    assert mine_project.tokenizer == ""
    # the victim's own tokenizer, set by its worker inside the data folder, shows relative to it and may be saved back
    services.project_tokenizer_adopt(project=project, tokenizer=tiny)
    client = Client()  # the victim's own browser
    client.force_login(project.memberships.get(role="lead").user)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert str(server) not in page and 'value="$FINELINE_VAR_DIR/models/tiny-local-0123456789abcdef"' in page
    client.post(
        f"/projects/{project.slug}/settings/", {"tokenizer": "$FINELINE_VAR_DIR/models/tiny-local-0123456789abcdef"}
    )
    project.refresh_from_db()
    assert project.tokenizer == tiny


def untar(content: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content)) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


def test_artifacts_download_by_run_and_name_for_members_only(
    server, victim_run, project, lead, lead_api, expert, mine, outsider, outsider_api, client
):
    page_url = f"/projects/{project.slug}/runs/{victim_run.pk}/artifacts/adapter/"
    api_url = f"/api/v1/projects/{project.slug}/training-runs/{victim_run.pk}/artifacts/adapter/"
    client.force_login(lead)
    download = client.get(page_url)
    assert download.status_code == 200 and download["Content-Type"] == "application/x-tar"
    files = untar(b"".join(download.streaming_content))
    assert files[f"triage-run{victim_run.pk}-adapter/adapter_model.safetensors"] == b"victim weights " * 1000
    assert untar(b"".join(lead_api.get(api_url).streaming_content)) == files
    merged = client.get(f"/projects/{project.slug}/runs/{victim_run.pk}/artifacts/merged/")
    assert f"triage-run{victim_run.pk}-merged/model.safetensors" in untar(b"".join(merged.streaming_content))
    assert client.get(f"/projects/{project.slug}/runs/{victim_run.pk}/artifacts/deploy/").status_code == 404
    client.force_login(expert)
    assert client.get(page_url).status_code == 200  # a member sees the run, and what it made

    client.force_login(outsider)
    assert client.get(page_url).status_code == 404
    assert outsider_api.get(api_url).status_code == 404
    # nor through a run of their own whose row names the victim's folder
    own_project, version = mine
    forged = TrainingRun.objects.create(
        project=own_project, dataset_version=version, base_model="tiny-local", status="succeeded",
        adapter_dir=victim_run.adapter_dir, merged_dir=victim_run.merged_dir, merge_status="done",
    )  # fmt: skip
    for name in ("adapter", "merged"):
        assert client.get(f"/projects/mine/runs/{forged.pk}/artifacts/{name}/").status_code == 404
        assert outsider_api.get(f"/api/v1/projects/mine/training-runs/{forged.pk}/artifacts/{name}/").status_code == 404


def test_a_models_folder_around_the_data_folder_still_leaves_the_data_out(
    server, victim_run, mine, outsider_api, settings
):
    project, version = mine
    settings.FINELINE_MODELS_DIR = str(server)  # an administrator's too-wide setting
    body = {"dataset_version": version.number, "base_model": victim_run.adapter_dir, "override_readiness": "x"}
    response = outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json")
    assert response.status_code == 400 and "data folder" in response.json()["detail"]
    body["base_model"] = str(server / "models" / "allowed")
    assert outsider_api.post(f"/api/v1/projects/{project.slug}/training-runs/", body, format="json").status_code == 201
