"""The judge and the frontier baseline through the real `openai` client, talking HTTP to a local server."""

import json

import pytest

from evaluation import harness, metrics

from .openai_server import OpenAIServer


def judge_reply(body):
    """A judge that answers in JSON, except: 'broken' answers get prose first (then JSON when asked again),
    'hopeless' ones never get JSON, and 'wrong-shape' ones get JSON with a relevance of 9."""
    answer = body["messages"][1]["content"].split("ANSWER:\n", 1)[1]
    asked_again = len(body["messages"]) > 2
    if "hopeless" in answer or ("broken" in answer and not asked_again):
        return "Sure! I would give this a 4 out of 5.", 50, 10
    if "wrong-shape" in answer and not asked_again:
        return '{"relevance": 9, "unsupported_claims": []}', 50, 10
    claims = ["Priya"] if "Priya" in answer else []
    return "```json\n" + json.dumps({"relevance": 4, "unsupported_claims": claims, "reason": "ok"}) + "\n```", 50, 10


def test_the_judge_validates_retries_and_gives_up():
    items = [
        {"source": "export fails", "reference": "SEVERITY: P3", "answer": "SEVERITY: P3, ask Priya"},
        {"source": "export fails", "reference": "SEVERITY: P3", "answer": "broken SEVERITY: P3"},
        {"source": "export fails", "reference": "SEVERITY: P3", "answer": "wrong-shape"},
        {"source": "export fails", "reference": "SEVERITY: P3", "answer": "hopeless"},
    ]
    with OpenAIServer(judge_reply) as server:
        client = harness.openai_client(server.url, "test-key")
        grades = harness.judge(client, "judge-model", items, retries=3, concurrency=2)
    assert grades[0] == {"relevance": 4, "unsupported_claims": ["Priya"], "reason": "ok"}
    assert grades[1]["relevance"] == 4 and grades[2]["relevance"] == 4  # after one more try each
    assert grades[3] is None
    by_answer = {}
    for body in server.requests:
        by_answer.setdefault(body["messages"][1]["content"].rsplit("\n", 1)[-1], []).append(body)
    assert len(by_answer["hopeless"]) == 3 and len(by_answer["wrong-shape"]) == 2
    retry = by_answer["wrong-shape"][1]["messages"]
    assert retry[-1]["role"] == "user" and "9 is greater than the maximum of 5" in retry[-1]["content"]
    assert all(body["model"] == "judge-model" and body["temperature"] == 0 for body in server.requests)


def test_the_frontier_baseline_answers_with_tokens_latency_and_cost():
    with OpenAIServer(lambda body: ("SEVERITY: P2\nIMPACT: one team\nACTION: look", 120, 30)) as server:
        client = harness.openai_client(server.url, "sk-test")
        conversations = [[{"role": "user", "content": f"ticket {i}"}] for i in range(6)]
        out = harness.api_answers(client, "gpt-4o-mini", conversations, concurrency=3)
    assert out.answers == ["SEVERITY: P2\nIMPACT: one team\nACTION: look"] * 6
    assert out.prompt_tokens == [120] * 6 and out.completion_tokens == [30] * 6
    assert len(out.latencies_ms) == 6 and all(ms > 0 for ms in out.latencies_ms)
    # (120 x $0.15 + 30 x $0.60) / 1e6 per query.
    cost = metrics.cost_per_query_api(out.prompt_tokens, out.completion_tokens, 0.15, 0.60)
    assert cost == pytest.approx(3.6e-5)
    sent = sorted(body["messages"][0]["content"] for body in server.requests)  # concurrent: in any order
    assert sent == [f"ticket {i}" for i in range(6)]


def test_prompt_messages_put_the_variant_first_and_drop_the_examples_system_turn():
    shots = [
        [
            {"role": "system", "content": "old"},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
        ]
    ]
    messages = [{"role": "system", "content": "old"}, {"role": "user", "content": "q"}]
    assert harness.prompt_messages("Be brief.", shots, messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q"},
    ]
