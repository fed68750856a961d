"""Generated candidates for a label that lacks examples: the prompt and the reading of replies (pure), then a job
against the frontier source (the local OpenAI-compatible stand-in over real HTTP) whose replies are good, malformed,
off-format, off-label, near duplicates and an HTTP error, with the report's exact counts, the created examples'
status, tags and provenance, and the API with its permissions."""

import itertools
import json
import threading

import pytest
from django.test import override_settings

from curation import selectors as curation_selectors
from curation.models import Example
from evaluation import candidates, generation
from evaluation.models import GenerationJob

from ..helpers import chat, jsonl, post_jsonl
from .openai_server import OpenAIServer
from .test_services import trained_run  # noqa: F401 (a fixture: a run trained here for a few steps)

LONG = (
    "Our production database cluster in the Frankfurt region stopped accepting connections at nine this morning and "
    "every customer facing service now returns errors while the replicas refuse to be promoted by the operator"
)
SEED_ANSWER = "SEVERITY: P1\nIMPACT: production down for every customer\nACTION: page the on-call DBA now"


def example_json(user: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


GOOD_A = example_json(
    "Payments fail for all merchants since the last deploy; checkout shows a blank page everywhere.",
    "SEVERITY: P1\nIMPACT: no payment goes through\nACTION: roll back the deploy and page payments on-call",
)
GOOD_B = json.dumps(
    {
        "user": "The login service rejects every password after the certificate rotation; nobody can sign in.",
        "assistant": "SEVERITY: P1\nIMPACT: all users locked out\nACTION: restore the previous certificate",
    }
)
REPLIES = [
    f"```json\n{GOOD_A}\n```",  # good, in a code fence
    f"Here it is: {GOOD_B}",  # good, user/assistant shape inside a sentence
    "{'messages': [{'role': 'user', 'content': 'Disk full'}]}",  # a Python dict, not JSON
    "I cannot write that example.",  # no JSON at all
    example_json("Email delayed by an hour for one team.", "It is a P1 because it is urgent."),  # off the format
    example_json("A typo on the pricing page.", "SEVERITY: P3\nIMPACT: cosmetic\nACTION: fix it this week"),  # label
    example_json(LONG + " today", SEED_ANSWER),  # a near duplicate of a seed
    GOOD_A,  # the first candidate again
    400,  # the endpoint refuses the request (the client does not retry a 400)
]


# --- The prompt and the replies, without Django ----------------------------------------------------------------------


def test_the_prompt_shows_the_seeds_without_their_system_message_and_asks_for_the_label():
    system = candidates.instruction(
        label="P1",
        task_description="Triage tickets.",
        format_hint=candidates.format_hint({"kind": "regex", "pattern": "SEVERITY: P[1-4]"}),
    )
    seed = [
        {"role": "system", "content": "secret prompt"},
        {"role": "user", "content": "db down"},
        {"role": "assistant", "content": "SEVERITY: P1"},
    ]
    messages = candidates.generation_messages(system=system, label="P1", seeds=[seed, seed])
    assert messages[0] == {"role": "system", "content": system}
    assert "Triage tickets." in system and "whose correct label is P1" in system and "SEVERITY: P[1-4]" in system
    assert "secret prompt" not in messages[1]["content"]
    assert messages[1]["content"].count('{"messages": [{"role": "user", "content": "db down"}') == 2
    assert messages[1]["content"].endswith("Write one new example of label P1.")
    choices = candidates.seed_choices(range(10), count=5, k=3, seed=7)
    assert choices == candidates.seed_choices(range(10), count=5, k=3, seed=7)  # deterministic
    assert all(len(set(c)) == 3 for c in choices) and len({tuple(c) for c in choices}) > 1
    assert candidates.seed_choices([4], count=2, k=3, seed=0) == [[4], [4]]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "no JSON object"),
        ("{not json}", "not valid JSON"),
        ('{"text": "hi"}', "no `messages`"),
        ('{"messages": "hi"}', "not a list of objects"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "does not end with the assistant's answer"),
        ('{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}', "does not end"),
    ],
)
def test_a_reply_that_is_no_example_says_why(reply, reason):
    with pytest.raises(candidates.CandidateError, match=reason):
        candidates.parse_candidate(reply)


def test_a_reply_is_read_from_a_fence_or_a_sentence_and_gets_the_project_system_prompt():
    fenced = candidates.parse_candidate(f"```json\n{GOOD_A}\n```", system_prompt="You are a support agent.")
    assert [m["role"] for m in fenced] == ["system", "user", "assistant"]
    assert fenced[0]["content"] == "You are a support agent."
    shaped = candidates.parse_candidate(f"Sure: {GOOD_B} Hope it helps.")
    assert [m["role"] for m in shaped] == ["user", "assistant"]
    turns = [
        {"role": "system", "content": "other"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    with_system = json.dumps({"messages": turns})
    assert candidates.parse_candidate(with_system, system_prompt="mine")[0]["content"] == "mine"


# --- A job against the frontier stand-in -----------------------------------------------------------------------------


@pytest.fixture
def seeded(project, lead, lead_api):
    """Three approved P1 examples (the seeds), one pending P1 and 12 approved P4 (P1 lacks examples)."""
    rows = [chat(LONG, SEED_ANSWER, label="P1")]
    rows += [
        chat(f"Seed ticket {i}: the whole {w} is down for every user.", SEED_ANSWER, label="P1")
        for i, w in enumerate(["site", "API"])
    ]
    rows += [chat("Pending ticket about a crash.", SEED_ANSWER, label="P1")]
    rows += [chat(f"Question {i} about an invoice.", label="P4") for i in range(12)]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).exclude(messages__1__content="Pending ticket about a crash.").update(
        status="approved"
    )
    return project


def frontier(replies):
    """A stand-in whose n-th request gets the n-th reply, whatever order the concurrent requests come in: the
    report's counts do not depend on it."""
    counter, lock = itertools.count(), threading.Lock()

    def reply(body):
        with lock:
            n = next(counter)
        answer = replies[n % len(replies)]
        return answer if isinstance(answer, int) else (answer, 200, 60)

    return OpenAIServer(reply)


def test_a_frontier_job_writes_the_good_candidates_pending_and_reports_every_rejection(seeded, lead):
    project = seeded
    approved_before = curation_selectors.readiness_stats(project=project)["label_counts"]
    with (
        frontier(REPLIES) as server,
        override_settings(FINELINE_FRONTIER_BASE_URL=server.url, FINELINE_FRONTIER_MODEL="stand-in"),
    ):
        job = generation.generation_job_create(
            project=project, user=lead, label="P1", count=len(REPLIES), source="frontier"
        )
        assert (
            job.status == "queued" and job.model == "stand-in" and generation.generation_queue(job.source) == "default"
        )
        job = generation.generation_job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    report = job.report
    assert (report["written"], report["rejected_format"], report["rejected_duplicate"], report["errors"]) == (
        2,
        4,
        2,
        1,
    )
    assert report["requested"] == 9 and job.done == 9 and report["per_second"] > 0
    kinds = sorted(r["kind"] for r in report["rejections"])
    assert kinds == ["duplicate"] * 2 + ["error"] + ["format"] * 4
    reasons = " | ".join(r["reason"] for r in report["rejections"])
    for words in ("not valid JSON", "no JSON object", "does not fit the output format", "states P3, not P1",
                  "near duplicate of example #", "near duplicate of candidate", "BadRequestError"):  # fmt: skip
        assert words in reasons, words
    # Each request asked for one P1 example from approved P1 seeds only.
    seeds = set(Example.objects.filter(project=project, label="P1", status="approved").values_list("pk", flat=True))
    assert len(server.requests) == 9
    assert all("Write one new example of label P1." in body["messages"][1]["content"] for body in server.requests)
    assert not any("Pending ticket" in body["messages"][1]["content"] for body in server.requests)
    created = list(Example.objects.filter(pk__in=report["examples"]))
    assert len(created) == 2
    for example in created:
        assert example.status == "pending" and example.tags == ["generated"] and example.label == "P1"
        assert example.messages[0] == {"role": "system", "content": "You are a support agent."}
        provenance = example.metadata["generated"]
        assert provenance["job"] == job.pk and provenance["source"] == "frontier" and provenance["model"] == "stand-in"
        assert provenance["prompt"] == job.prompt and set(provenance["seed_ids"]) <= seeds and provenance["seed_ids"]
    # Pending: nothing counts until an expert approves.
    assert curation_selectors.readiness_stats(project=project)["label_counts"] == approved_before


def test_launch_rules(seeded, lead, settings):
    project = seeded

    def make(**kw):
        fields = {"label": "P1", "count": 5, "source": "frontier", **kw}
        return generation.generation_job_create(project=project, user=lead, **fields)

    settings.FINELINE_FRONTIER_BASE_URL = ""
    with pytest.raises(generation.ServiceError, match="no frontier endpoint"):
        make()
    for source in ("fine_tuned", "base_few_shot"):
        with pytest.raises(generation.ServiceError, match="no training run of this project has succeeded"):
            make(source=source)
    settings.FINELINE_FRONTIER_BASE_URL = "http://127.0.0.1:9/v1"
    with pytest.raises(generation.ServiceError, match="no label 'P9'"):
        make(label="P9")
    for count in (0, 101, "5", True, 2.5):
        with pytest.raises(generation.ServiceError, match="from 1 to 100"):
            make(count=count)
    with pytest.raises(generation.ServiceError, match="`source` is one of"):
        make(source="oracle")
    with pytest.raises(generation.ServiceError, match="no approved P2 example"):
        make(label="P2")
    assert GenerationJob.objects.count() == 0


# --- The API and the pages -------------------------------------------------------------------------------------------


def test_the_api_queues_a_job_answers_its_url_and_refuses_bad_requests(seeded, lead_api, expert_api, settings):
    project = seeded
    url = f"/api/v1/projects/{project.slug}/generate/"
    settings.FINELINE_FRONTIER_BASE_URL = ""
    refused = lead_api.post(url, {"label": "P1", "count": 3, "source": "frontier"}, format="json")
    assert refused.status_code == 400 and "FINELINE_FRONTIER_BASE_URL" in json.dumps(refused.json())
    settings.FINELINE_FRONTIER_BASE_URL = "http://127.0.0.1:9/v1"
    for body in (
        {"label": "P9", "count": 3, "source": "frontier"},
        {"label": "P1", "count": 0, "source": "frontier"},
        {"label": "P1", "count": 1000, "source": "frontier"},
        {"label": "P1", "count": "many", "source": "frontier"},
        {"label": "P1", "count": 3, "source": "oracle"},
        {"label": "P1", "count": 3, "source": "fine_tuned"},
        {"label": "P1", "count": 3, "source": "base_few_shot", "training_run": 999999},
        {"count": 3, "source": "frontier"},
        [],
    ):
        assert lead_api.post(url, body, format="json").status_code == 400, body
    assert expert_api.post(url, {"label": "P1", "count": 3, "source": "frontier"}, format="json").status_code == 403
    answer = lead_api.post(url, {"label": "P1", "count": 3, "source": "frontier"}, format="json")
    assert answer.status_code == 202, answer.json()
    job = answer.json()
    assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": 3, "stage": ""}
    assert answer["Location"] == job["url"] == f"{url}{job['id']}/"
    polled = expert_api.get(job["url"])  # any member reads it
    assert polled.status_code == 200 and polled.json()["label"] == "P1" and polled.json()["source"] == "frontier"
    assert [j["id"] for j in expert_api.get(url).json()] == [job["id"]]
    assert GenerationJob.objects.get().created_by.username == "lena"


def test_the_readiness_gap_offers_the_form_and_the_job_page_shows_the_report(seeded, lead, expert, client, settings):
    project = seeded
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert 'data-generate="P1"' in page and "Generate candidates" in page  # P1 lacks approved examples next to P4
    settings.FINELINE_FRONTIER_BASE_URL = ""
    refused = client.post(f"/projects/{project.slug}/generate/", {"label": "P1", "count": "x", "source": "frontier"})
    assert refused.status_code == 302 and refused["Location"] == f"/projects/{project.slug}/"
    with frontier(REPLIES[:2]) as server, override_settings(FINELINE_FRONTIER_BASE_URL=server.url):
        started = client.post(
            f"/projects/{project.slug}/generate/", {"label": "P1", "count": "2", "source": "frontier"}
        )
        job = GenerationJob.objects.get()
        assert started.status_code == 302 and started["Location"] == f"/projects/{project.slug}/generate/{job.pk}/"
        live = client.get(started["Location"] + "?part=live", HTTP_HX_REQUEST="true").content.decode()
        assert 'hx-trigger="every 2s"' in live and "waiting for a worker" in live
        generation.generation_job_execute(job_id=job.pk)
    page = client.get(started["Location"]).content.decode()
    assert "<strong data-written>2</strong> written" in page and "hx-trigger" not in page
    example = Example.objects.filter(tags=["generated"]).first()
    client.force_login(expert)
    assert "Generate candidates" not in client.get(f"/projects/{project.slug}/").content.decode()
    review = client.get(f"/projects/{project.slug}/examples/{example.pk}/review/").content.decode()
    assert "data-provenance" in review and f"job #{job.pk}" in review and "The prompt" in review
    assert client.post(f"/projects/{project.slug}/generate/", {"label": "P1", "count": "2"}).status_code == 403


@pytest.mark.slow
def test_the_base_model_writes_candidates_few_shot_on_the_gpu_queue(project, lead, trained_run, settings):  # noqa: F811
    """tiny-local (barely pretrained, never taught JSON) as the few-shot source: the path runs end to end and every
    candidate is accounted for; its replies are rarely examples, and the report says why."""
    settings.FINELINE_GENERATION_MAX_NEW_TOKENS = 24
    job = generation.generation_job_create(project=project, user=lead, label="P1", count=3, source="base_few_shot")
    assert job.training_run == trained_run and generation.generation_queue(job.source) == "gpu"
    job = generation.generation_job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    report = job.report
    assert job.done == 3 and report["written"] + report["rejected_format"] + report["rejected_duplicate"] == 3
    assert report["errors"] == 0 and len(report["rejections"]) == 3 - report["written"]
