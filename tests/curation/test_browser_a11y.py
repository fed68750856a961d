"""Every page a lead or an expert uses, in a real Chromium at a phone's and a desktop's size: an h1, nothing wider
than the window, one readable column for the review page, ARIA references that resolve, and axe-core (tests/vendor,
MPL-2.0) finding nothing critical or serious. The API docs and Django's admin are not the product's own pages."""

from collections import Counter
from pathlib import Path

import pytest

from curation import services
from curation.models import DatasetVersion, Example, QualityScan
from evaluation.models import AnswerRating, EvaluationAnswer, GenerationJob

from ..browser_helpers import log_in
from ..evaluation import test_views as evaluation_views

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

AXE = (Path(__file__).resolve().parent.parent / "vendor" / "axe-4.14.1.min.js").read_text()
SIZES = {"390x844": {"width": 390, "height": 844}, "1920x1080": {"width": 1920, "height": 1080}}
finished = evaluation_views.finished  # a succeeded run with its evaluation
MISSING_REFERENCES = """() => [...document.querySelectorAll("[aria-describedby], [aria-labelledby], [aria-controls]")]
    .flatMap(e => ["aria-describedby", "aria-labelledby", "aria-controls"]
        .flatMap(a => (e.getAttribute(a) || "").split(/\\s+/).filter(id => id && !document.getElementById(id))
        .map(id => `${e.tagName.toLowerCase()}[${a}=${id}]`)))"""


@pytest.fixture
def site(project, version, finished, lead, expert):
    """A project with something on every page: a frozen version, a quality scan, pending examples to review, a run
    and its evaluation. Returns the paths of the pages."""
    evaluation, _ = finished
    EvaluationAnswer.objects.filter(evaluation=evaluation).update(relevance=4.0, hallucinated=False)  # judged: rated
    pending = list(Example.objects.filter(project=project).order_by("id")[:10])
    Example.objects.filter(pk__in=[e.pk for e in pending]).update(status="pending")
    services.quality_scan_run(scan=QualityScan.objects.create(project=project, threshold=0.85))
    changed = services.dataset_version_freeze(project=project, user=lead)  # v2: the pending ten left out
    job = GenerationJob.objects.create(
        project=project, created_by=lead, label="P1", count=3, source="frontier", model="stand-in", status="succeeded",
        prompt="Write ONE new example whose correct label is P1.",
        report={"requested": 3, "written": 1, "rejected_format": 1, "rejected_duplicate": 1, "errors": 0,
                "examples": [pending[0].pk], "seconds": 1.5, "per_second": 2.0, "rejections": [
                    {"candidate": 2, "kind": "format", "reason": "the reply is not valid JSON.", "excerpt": "{'a'"},
                    {"candidate": 3, "kind": "duplicate", "reason": "a near duplicate of #1.", "excerpt": "x"}]},
    )  # fmt: skip
    provenance = {"job": job.pk, "source": "frontier", "model": "stand-in", "seed_ids": [pending[1].pk], "prompt": "P"}
    Example.objects.filter(pk=pending[0].pk).update(metadata={"generated": provenance}, tags=["generated"])
    slug = project.slug
    return {
        "generation": f"/projects/{slug}/generate/{job.pk}/",
        "projects": "/",
        "dashboard": f"/projects/{slug}/",
        "review": f"/projects/{slug}/review/",
        "examples": f"/projects/{slug}/examples/",
        "history": f"/projects/{slug}/examples/{pending[0].pk}/history/",
        "disagreements": f"/projects/{slug}/disagreements/",
        "runs": f"/projects/{slug}/runs/",
        "run": f"/projects/{slug}/runs/{evaluation.training_run_id}/",
        "try the model": f"/projects/{slug}/runs/{evaluation.training_run_id}/chat/",
        "evaluations": f"/projects/{slug}/evaluations/",
        "evaluation": f"/projects/{slug}/evaluations/{evaluation.pk}/",
        "rate": f"/projects/{slug}/evaluations/{evaluation.pk}/rate/",
        "prompts": f"/projects/{slug}/prompts/",
        "version diff": f"/projects/{slug}/versions/{changed.pk}/diff/",
        "project history": f"/projects/{slug}/history/",
    }


def audit(page, url: str, where: str, impacts: Counter) -> list[str]:
    """What is wrong with the page at url, as lines; counts axe-core's violations by impact into impacts."""
    page.goto(url)
    page.wait_for_load_state("networkidle")
    problems = [] if page.locator("h1").count() else [f"{where}: no h1"]
    if (wider := page.evaluate("document.documentElement.scrollWidth - window.innerWidth")) > 0:
        problems.append(f"{where}: {wider}px wider than the window")
    if page.locator("[data-conversation]").count():
        column = page.locator("[data-conversation]").bounding_box()["width"]
        if column < 300:
            problems.append(f"{where}: the conversation is {column:.0f}px wide")
    problems += [f"{where}: {ref} names no element" for ref in page.evaluate(MISSING_REFERENCES)]
    page.evaluate(AXE)  # evaluate, not a script tag: the site's CSP refuses inline scripts, and should keep doing so
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
            id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    for violation in violations:
        impacts[violation["impact"]] += 1
        impacts[f"{violation['impact']}: {violation['id']}"] += 1
        if violation["impact"] in ("critical", "serious"):
            problems.append(f"{where}: {violation}")
    return problems


def test_every_page_fits_a_phone_and_a_desktop_and_axe_finds_nothing_serious(browser, live_server, site):
    problems, impacts = [], Counter()
    expert_pages = ["projects", "dashboard", "review", "examples", "runs", "version diff", "rate"]
    for username, pages in (("lena", list(site)), ("maria", expert_pages)):
        for size, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport)
            page = log_in(context, live_server.url, username, f"pw-{username}")
            for name in pages:
                problems += audit(page, live_server.url + site[name], f"{username} {name} {size}", impacts)
            context.close()
    context = browser.new_context(viewport=SIZES["390x844"])  # the login page, as someone not logged in sees it
    problems += audit(context.new_page(), f"{live_server.url}/login/", "login", impacts)
    context.close()
    print("axe-core violations (rule x page x size):", dict(sorted(impacts.items())) or "none")
    assert not problems, "\n".join(problems)


def test_the_next_example_is_announced_by_name_and_focus_shows_on_its_panel(browser, live_server, site, project):
    context = browser.new_context(viewport=SIZES["390x844"])
    page = log_in(context, live_server.url, "maria", "pw-maria")
    page.goto(live_server.url + site["review"])
    first = int(page.get_attribute("[data-review-panel]", "data-example"))
    page.keyboard.press("n")  # the queue's "next" key: the panel is swapped and takes focus
    page.wait_for_selector(f"[data-review-panel]:not([data-example='{first}'])")
    second = int(page.get_attribute("[data-review-panel]", "data-example"))
    # What a screen reader says on the focus move: the region's name, the example's number.
    region = page.get_by_role("region", name=f"Example #{second}")
    assert region.count() == 1 and page.evaluate("document.activeElement.hasAttribute('data-review-panel')")
    style, width = page.evaluate("(s => [s.outlineStyle, s.outlineWidth])(getComputedStyle(document.activeElement))")
    assert style != "none" and width != "0px", (style, width)
    context.close()


def test_choosing_another_version_swaps_the_diff_in_place(browser, live_server, site, project):
    v2 = DatasetVersion.objects.get(project=project, number=2)
    context = browser.new_context(viewport=SIZES["1920x1080"])
    page = log_in(context, live_server.url, "lena", "pw-lena")
    page.goto(live_server.url + site["version diff"])
    assert page.locator("#version-diff h2").inner_text() == "Against v1"
    assert page.locator("[data-count=removed]").inner_text() == "10"
    page.get_by_label("Compare with").select_option(str(v2.pk))  # v2 against itself: no change
    page.wait_for_selector("#version-diff h2:text('Against v2')")
    assert page.locator("[data-count=removed]").inner_text() == "0"
    assert page.url.endswith(f"?against={v2.pk}")  # the choice is in the address, as a reload keeps it
    context.close()


def test_an_expert_rates_answers_blind_with_the_keyboard_alone(browser, live_server, site, expert):
    context = browser.new_context(viewport=SIZES["1920x1080"])
    page = log_in(context, live_server.url, "maria", "pw-maria")
    page.goto(live_server.url + site["rate"])
    first = int(page.get_attribute("[data-rating-panel]", "data-answer"))
    assert page.evaluate("document.activeElement.hasAttribute('data-rating-panel')")
    assert page.get_by_role("region", name="Answer 1 of 6").count() == 1
    page.keyboard.press("4")
    page.keyboard.press("y")
    assert page.get_by_role("radio", name="4 answers it").is_checked()
    assert page.get_by_role("radio", name="y yes, unsupported").is_checked()
    page.keyboard.press("Enter")  # saved, and the next answer slides in with the focus on it
    page.wait_for_selector(f"[data-rating-panel]:not([data-answer='{first}'])")
    assert page.get_by_role("region", name="Answer 2 of 6").count() == 1
    assert page.evaluate("document.activeElement.hasAttribute('data-rating-panel')")
    rating = AnswerRating.objects.get(rater=expert)
    assert (rating.answer_id, rating.relevance, rating.unsupported) == (first, 4, True)
    second = int(page.get_attribute("[data-rating-panel]", "data-answer"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # the unsupported question unanswered: the browser asks, nothing is saved
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"[data-rating-panel]:not([data-answer='{second}'])")
    assert AnswerRating.objects.get(rater=expert, answer_id=second).relevance == 2
    assert AnswerRating.objects.filter(rater=expert).count() == 2
    context.close()
