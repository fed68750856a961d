"""Try the model: a lead's chat with a run, answered by a real Celery worker on the `chat` queue with a tiny model
(the fine-tune and its base side by side, streamed into the row), and every refusal a clear 4xx."""

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.html import escape

from core.errors import ServiceError
from training import services
from training.models import ChatReply, TrainingRun

pytestmark = pytest.mark.django_db
USER = {"role": "user", "content": "Our production database is down."}


@pytest.fixture
def queued_run(project, version):
    return TrainingRun.objects.create(project=project, dataset_version=version, base_model="tiny-local")


def test_bad_conversations_and_a_run_with_nothing_to_answer_are_clear_400s(
    project, queued_run, lead_api, expert_api, outsider_api, client, lead, tmp_path, settings
):
    settings.VAR_DIR = tmp_path
    url = f"/api/v1/projects/{project.slug}/training-runs/{queued_run.pk}/chat/"
    settings.FINELINE_CHAT_MAX_CHARS = 100
    bodies = {
        "no messages": ({}, "messages"),
        "not a list": ({"messages": "hi"}, "messages"),
        "empty": ({"messages": []}, "messages"),
        "a role": ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
        "blank": ({"messages": [{"role": "user", "content": " "}]}, "non-empty `content`"),
        "last is not the user's": ({"messages": [USER, {"role": "assistant", "content": "ok"}]}, "last message"),
        "NUL": ({"messages": [{"role": "user", "content": "a\x00b"}]}, "NUL"),
        "too long": ({"messages": [{"role": "user", "content": "x" * 101}]}, "over the limit of 100"),
        "no checkpoint yet": ({"messages": [USER]}, "no complete checkpoint yet"),
    }
    for name, (body, said) in bodies.items():
        response = lead_api.post(url, body, format="json")
        assert response.status_code == 400, (name, response.content)
        assert said in response.content.decode(), name
    assert lead_api.post(url, [USER], format="json").status_code == 400
    assert expert_api.post(url, {"messages": [USER]}, format="json").status_code == 403
    assert outsider_api.post(url, {"messages": [USER]}, format="json").status_code == 404
    assert not ChatReply.objects.exists()

    client.force_login(lead)
    page = f"/projects/{project.slug}/runs/{queued_run.pk}/chat/"
    response = client.get(page)
    assert response.status_code == 200 and b"no complete checkpoint yet" in response.content
    assert client.get(page + "?example=nope").status_code == 400
    item = queued_run.dataset_version.items.filter(split="test").order_by("id").first()
    picked = client.get(f"{page}?example={item.pk}")
    last_user = [m["content"] for m in item.messages if m["role"] == "user"][-1]
    assert picked.status_code == 200 and escape(last_user) in picked.content.decode()  # as the page escapes it
    refused = client.post(page, {"message": "Hello", "compare_base": "1"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400 and b"no complete checkpoint yet" in refused.content
    assert client.post(page, {"message": ""}).status_code == 400
    with pytest.raises(ServiceError, match="object with `role` and `content` only"):
        services.chat_messages_clean([{**USER, "name": "x"}])


def test_a_chat_no_worker_answers_in_time_reads_failed_saying_why(project, queued_run, lead_api, settings):
    settings.FINELINE_CHAT_SOFT_TIME_LIMIT, settings.FINELINE_TASK_TIME_LIMIT_GRACE = 60, 30
    reply = ChatReply.objects.create(run=queued_run, messages=[USER])
    url = f"/api/v1/projects/{project.slug}/training-runs/{queued_run.pk}/chat/{reply.pk}/"
    assert lead_api.get(url).json()["status"] == "queued"
    ChatReply.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    lost = lead_api.get(url).json()
    assert lost["status"] == "failed" and "no worker on the `chat` queue took it within 60 s" in lost["error"]
    started = timezone.now() - timedelta(seconds=89)
    ChatReply.objects.filter(pk=reply.pk).update(status="running", started_at=started)
    assert lead_api.get(url).json()["status"] == "running"  # within its time limit and grace
    ChatReply.objects.filter(pk=reply.pk).update(started_at=started - timedelta(seconds=2))
    assert "its worker was lost" in lead_api.get(url).json()["error"]
    assert ChatReply.objects.get(pk=reply.pk).status == "running"  # read so, not written: a late answer still lands


@pytest.mark.slow  # the session's small base is built once for the slow tests
def test_the_chat_streams_and_times_both_answers(small_base):
    """The recipe alone: the text grows token by token to the final answer; one load answers for the base too."""
    from training.recipes import chat, sft

    model, tokenizer = sft.load_for_inference(small_base)
    seen = []
    reply = chat.answer(model, tokenizer, [USER], max_new_tokens=12, on_text=seen.append)
    assert len(seen) == reply.new_tokens == 12 and seen[-1] == reply.content
    assert 0 < reply.first_token_ms <= reply.latency_ms
    cut = chat.answer(model, tokenizer, [USER] * 20, max_new_tokens=2, max_prompt_tokens=16)
    assert cut.prompt_truncated and cut.prompt_tokens == 16


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_chat_worker_answers_side_by_side_from_the_final_adapter_and_a_checkpoint(
    project, version, lead, lead_api, client, small_base, tmp_path
):
    from ..helpers import service_env, start_worker, stop_worker

    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        base_model=small_base,
        options={"max_steps": 2, "batch_size": 8, "checkpoint_every": 1},
        override_readiness="test",
    )
    with override_settings(VAR_DIR=tmp_path):
        run = services.training_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    worker = start_worker(service_env(FINELINE_VAR_DIR=tmp_path, FINELINE_CHAT_MAX_NEW_TOKENS=24), queues="chat")
    url = f"/api/v1/projects/{project.slug}/training-runs/{run.pk}/chat/"
    try:
        with override_settings(VAR_DIR=tmp_path, FINELINE_CHAT_WAIT_SECONDS=90):
            started = time.monotonic()
            first = lead_api.post(url, {"messages": [USER], "compare_base": True}, format="json")
            cold = time.monotonic() - started
            assert first.status_code == 200, first.content
            body = first.json()
            assert body["status"] == "succeeded" and body["weights"] == "final"
            for system in ("fine_tuned", "base"):
                answer = body[system]
                # a model trained 2 steps may end its turn at once: the answer is then empty, not missing
                assert isinstance(answer["content"], str) and isinstance(answer["format_ok"], bool)
                assert answer["new_tokens"] >= 1
                assert 0 < answer["first_token_ms"] <= answer["latency_ms"]
            started = time.monotonic()
            second = lead_api.post(url, {"messages": [USER], "compare_base": False}, format="json").json()
            warm = time.monotonic() - started
            assert second["base"] is None and second["fine_tuned"]["content"] == body["fine_tuned"]["content"]
            assert lead_api.get(second["url"]).json()["id"] == second["id"]
            print(f"\nchat through the API: {cold:.2f} s cold (worker start, model load), {warm:.2f} s warm")

            # While the run trains: its latest complete checkpoint answers.
            TrainingRun.objects.filter(pk=run.pk).update(status="running")
            client.force_login(lead)
            page = f"/projects/{project.slug}/runs/{run.pk}/chat/"
            assert b"latest complete checkpoint, step-1" in client.get(page).content
            form = {"message": USER["content"], "compare_base": "1"}
            posted = client.post(page, form, headers={"HX-Request": "true"})
            assert posted.status_code == 200 and b"every 300ms" in posted.content
            reply = ChatReply.objects.latest("created_at")
            statuses, deadline = set(), time.monotonic() + 90
            while time.monotonic() < deadline:
                fragment = client.get(f"{page}{reply.pk}/", headers={"HX-Request": "true"})
                status = fragment.content.decode().split('data-status="', 1)[1].split('"', 1)[0]
                statuses.add(status)
                if status not in ChatReply.ACTIVE:
                    break
                time.sleep(0.1)
            assert status == "succeeded", fragment.content
            html = fragment.content.decode()
            assert "Fine-tuned (step-1)" in html and "Base model" in html and "every 300ms" not in html
            assert html.count("whole answer") == 2 and html.count('data-format="') == 2
    finally:
        output = stop_worker(worker)
    assert "Traceback" not in output, output
