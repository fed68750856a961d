"""Experts rate an evaluation's answers blind, and the evaluation says how far its judge agrees with them: the rating
page (one answer at a time, no system name, the same seeded order for everyone), the ratings API, and the agreement
on the detail page and in the API, against the table computed by hand in test_metrics.py."""

import html
import re

import pytest

from curation.models import DatasetVersionItem
from evaluation import selectors, verdicts
from evaluation.models import AnswerRating, Evaluation, EvaluationAnswer

from .test_metrics import JUDGE_KAPPA, JUDGE_RHO, JUDGE_TABLE
from .test_views import finished  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def judged(finished, version):  # noqa: F811
    """The finished evaluation's answers scored by the judge as in JUDGE_TABLE (A1-A6 on its three test items, A7 and
    A8 on a fourth), each answer's text naming only its row."""
    evaluation, items = finished
    fourth = DatasetVersionItem.objects.filter(version=version, split="test").exclude(pk__in=[i.pk for i in items])
    fourth = fourth.order_by("id").first()
    for system in ("fine_tuned", "base_zero_shot"):
        EvaluationAnswer.objects.create(evaluation=evaluation, item=fourth, system=system, answer="")
    answers = list(EvaluationAnswer.objects.filter(evaluation=evaluation).order_by("item_id", "system"))
    for row, (answer, (relevance, flag, _, _)) in enumerate(zip(answers, JUDGE_TABLE, strict=True), start=1):
        answer.answer, answer.relevance, answer.hallucinated = f"Answer text A{row}.", relevance, flag
        answer.save()
    return evaluation, answers


def shown(page: str) -> int:
    return int(re.search(r'data-rating-panel[^>]* data-answer="(\d+)"', page).group(1))


def test_experts_rate_blind_one_answer_at_a_time_in_one_seeded_order(project, judged, client, expert, lead, outsider):
    evaluation, answers = judged
    url = f"/projects/{project.slug}/evaluations/{evaluation.pk}/rate/"
    sample = selectors.rating_sample(evaluation=evaluation)
    assert sorted(sample) == sorted(a.pk for i, a in enumerate(answers) if i != 6)  # A7: the judge did not score it
    client.force_login(lead)
    assert shown(client.get(url).content.decode()) == sample[0]  # every rater meets the same answer first
    client.force_login(expert)
    page = client.get(url).content.decode()
    names = [*verdicts.SYSTEM_NAMES, *verdicts.SYSTEM_NAMES.values(), "fine-tuned", "zero-shot", "base model"]
    assert not [name for name in names if name.lower() in page.lower()]  # blind: no system, in any spelling
    assert "Reference answer" in page and 'name="relevance" value="5"' in page and "<kbd>y</kbd>" in page
    # A question left out, a relevance out of range: 400 with the same answer and what was chosen kept.
    missing = client.post(url, {"answer": sample[0], "relevance": 4}, headers=HTMX)
    assert missing.status_code == 400 and shown(missing.content.decode()) == sample[0]
    assert "Say whether the answer states something" in missing.content.decode()
    assert 'value="4" required checked' in missing.content.decode()
    wrong = client.post(url, {"answer": sample[0], "relevance": 9, "unsupported": "no"}, headers=HTMX)
    assert wrong.status_code == 400 and "Relevance is a whole number from 1 to 5" in wrong.content.decode()
    other = Evaluation.objects.create(project=project, dataset_version=evaluation.dataset_version)
    foreign = EvaluationAnswer.objects.create(evaluation=other, item=answers[0].item, system="fine_tuned", answer="x")
    for answer in (foreign.pk, "x", ""):
        assert client.post(url, {"answer": answer, "relevance": 3, "unsupported": "no"}).status_code == 404
    assert client.get(url + f"?answer={answers[6].pk}").status_code == 404  # not among those to rate
    # Enter saves and the next slides in: the whole sample, in its order.
    seen = []
    for step in range(len(sample)):
        assert f"Answer {step + 1} of {len(sample)}" in page
        seen.append(shown(page))
        page = client.post(url, {"answer": seen[-1], "relevance": 3, "unsupported": "no"}, headers=HTMX)
        page = page.content.decode()
    assert seen == sample and "You have rated all 7 sampled answers" in page and "data-saved" in page
    # Without script: a redirect to the page. Rating again replaces the rating, one per rater per answer.
    again = client.get(url + f"?answer={sample[0]}").content.decode()
    assert "You rated this one before" in again and 'value="3" required checked' in again
    assert client.post(url, {"answer": sample[0], "relevance": 5, "unsupported": "yes"})["Location"] == url
    mine = AnswerRating.objects.filter(rater=expert)
    assert mine.count() == 7 and (
        mine.get(answer_id=sample[0]).relevance,
        mine.get(answer_id=sample[0]).unsupported,
    ) == (5, True)
    client.force_login(outsider)
    assert client.get(url).status_code == 404 and client.post(url, {"answer": sample[0]}).status_code == 404


def test_the_api_takes_ratings_and_the_evaluation_gives_the_judges_agreement(
    project, judged, expert_api, lead_api, outsider_api, client, lead
):
    evaluation, answers = judged
    api = f"/api/v1/projects/{project.slug}/evaluations/{evaluation.pk}/"
    listed = expert_api.get(api + "answers/").json()
    assert {a.pk for a in answers} == {a["id"] for row in listed for a in row["answers"].values() if a}
    # The table's first rating of each answer is maria's (an expert), the second lena's (the lead).
    for answer, (_, _, relevances, flags) in zip(answers, JUDGE_TABLE, strict=True):
        for rater, relevance, flag in zip((expert_api, lead_api), relevances, flags, strict=False):
            body = {"answer": answer.pk, "relevance": relevance, "unsupported": flag}
            response = rater.post(api + "ratings/", body, format="json")
            assert response.status_code == 201, response.json()
    replaced = expert_api.post(
        api + "ratings/", {"answer": answers[0].pk, "relevance": 5, "unsupported": False}, format="json"
    )
    assert replaced.status_code == 200 and replaced.json()["rater"] == "maria" and AnswerRating.objects.count() == 10
    for bad in ({"relevance": 0}, {"relevance": 6}, {"relevance": "x"}, {"relevance": 2.5}, {"unsupported": "maybe"}):
        body = {"answer": answers[0].pk, "relevance": 3, "unsupported": False, **bad}
        response = expert_api.post(api + "ratings/", body, format="json")
        assert response.status_code == 400 and set(response.json()) == set(bad) - {"answer"}, response.json()
    assert expert_api.post(api + "ratings/", {"relevance": 3}, format="json").status_code == 400
    other = Evaluation.objects.create(project=project, dataset_version=evaluation.dataset_version)
    foreign = EvaluationAnswer.objects.create(evaluation=other, item=answers[0].item, system="fine_tuned", answer="x")
    refused = expert_api.post(
        api + "ratings/", {"answer": foreign.pk, "relevance": 3, "unsupported": False}, format="json"
    )
    assert refused.status_code == 404 and refused.json()["detail"] == "No such answer."
    assert (
        outsider_api.post(
            api + "ratings/", {"answer": answers[0].pk, "relevance": 3, "unsupported": False}, format="json"
        ).status_code
        == 404
    )
    # The agreement: A7 (no judge score) and A8 (no rating) left out; rho 49/68, kappa 2/3 on 6 answers, 9 ratings.
    detail = expert_api.get(api).json()
    agreement = detail["judge_agreement"]
    assert (agreement["n"], agreement["ratings"]) == (6, 9)
    assert agreement["relevance_spearman"] == pytest.approx(JUDGE_RHO, abs=1e-4)
    assert agreement["unsupported_kappa"] == pytest.approx(JUDGE_KAPPA, abs=1e-4)
    assert "rests on 6 answers rated by experts (fewer than 20)" in agreement["warning"]
    assert detail["verdict"]["judge_warning"] == agreement["warning"]
    client.force_login(lead)
    page = html.unescape(client.get(f"/projects/{project.slug}/evaluations/{evaluation.pk}/").content.decode())
    assert '<td class="num" data-agreement-n>6</td>' in page and ">0.72</td>" in page and ">0.67</td>" in page
    assert re.search(
        r"data-judge-warning>Trust the judge's relevance and hallucination scores with care: it rests", page
    )
