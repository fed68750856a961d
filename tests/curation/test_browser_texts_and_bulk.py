"""In a real Chromium: a long answer shown whole on the review page (folds, rendered / raw, all from the keyboard), and
a lead's bulk action on every example matching the browse page's filter."""

import pytest

from curation import services
from curation.models import Example, Review

from ..browser_helpers import ARTIFACTS, log_in
from ..helpers import chat, jsonl, post_jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def long_answer() -> str:
    paragraphs = [
        f"## Step {i}\n\nCheck the replication lag of replica {i} in the region; if it is over **30 s**, fail over.\n\n"
        f"```sql\nSELECT now() - pg_last_xact_replay_timestamp() AS lag_{i};\n```\n"
        for i in range(50)
    ]
    answer = "SEVERITY: P2\nIMPACT: one region\nACTION: follow the runbook\n\n<script>window.injected = 1</script>\n\n"
    answer += "\n".join(paragraphs)
    assert len(answer) > 8000
    return answer


@pytest.fixture
def long_examples(project, lead_api):
    context = " ".join(f"Log line {i}: connection reset by peer on node-{i % 7}." for i in range(60))
    rows = [
        chat(f"Ticket {n}: the nightly sync fails. {context}", answer=long_answer().replace("P2", "P3", 1))
        for n in range(2)
    ]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    return list(Example.objects.filter(project=project).order_by("id"))


FITS = "el => el.scrollHeight <= el.clientHeight + 1"


def test_a_long_answer_shows_whole_and_long_turns_fold_from_the_keyboard(browser, live_server, project, long_examples):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = log_in(context, live_server.url, "maria", "pw-maria")
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")
    answer = page.locator("textarea[data-answer]")
    assert answer.evaluate(FITS), answer.evaluate("el => [el.scrollHeight, el.clientHeight]")
    assert answer.evaluate("el => el.clientHeight") > 1500  # grown to its text, not a six-line box
    user = page.locator(".turn-user textarea")
    assert page.locator(".turn-user").get_attribute("class").split()[-1] == "folded"
    assert not user.evaluate(FITS)  # folded: its start shows, the rest scrolls inside
    assert "show all" in page.inner_text(".turn-user [data-fold]")

    page.keyboard.press("o")  # unfold every long turn, the system prompt too
    assert "folded" not in page.locator(".turn-user").get_attribute("class")
    assert user.evaluate(FITS) and page.locator("details[data-system]").evaluate("el => el.open")
    page.keyboard.press("m")  # rendered
    rendered = page.locator(".turn-assistant [data-rendered]")
    assert rendered.is_visible() and not answer.is_visible()
    assert rendered.locator("h2").count() == 50 and rendered.locator("pre code").count() == 50
    assert "<script>window.injected = 1</script>" in rendered.inner_text()  # raw HTML shows as text
    assert page.evaluate("window.injected") is None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-long-rendered.png"), full_page=True)
    page.keyboard.press("m")  # raw again
    assert answer.is_visible() and answer.evaluate(FITS)

    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.hasAttribute('data-answer')")
    page.keyboard.type("\nChecked by maria.\nAnd one more line.")
    assert answer.evaluate(FITS)
    page.keyboard.press("Escape")
    page.keyboard.press("m")  # the edited answer is rendered by the server as it now reads
    page.wait_for_function(
        "() => document.querySelector('.turn-assistant [data-rendered]').textContent.includes('Checked by maria.')"
    )
    page.keyboard.press("m")
    page.keyboard.press("3")
    page.keyboard.press("a")
    page.wait_for_function(
        f"() => document.querySelector('[data-review-panel]').dataset.example != '{long_examples[0].pk}'"
    )
    saved = Example.objects.get(pk=long_examples[0].pk)
    assert saved.status == "approved"
    assert saved.messages[-1]["content"].endswith("Checked by maria.\nAnd one more line.")
    assert len(saved.messages[-1]["content"]) > 8000
    # The next example keeps the reader's choice: its long turns come unfolded, its answer whole.
    assert "folded" not in page.locator(".turn-user").get_attribute("class")
    assert page.locator("textarea[data-answer]").evaluate(FITS)
    page.keyboard.press("?")
    assert "rendered" in page.inner_text("#shortcuts") and "Unfold" in page.inner_text("#shortcuts")
    page.screenshot(path=str(ARTIFACTS / "review-long.png"), full_page=True)
    context.close()


def test_a_lead_approves_every_example_matching_the_filter(browser, live_server, project, lead_api, expert):
    rows = [chat(f"export problem {i}", label="P2") for i in range(60)] + [chat("other thing", label="P1")]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    held = services.review_queue_next(project=project, reviewer=expert)  # an expert is on the first one
    page = log_in(browser.new_context(viewport={"width": 1280, "height": 900}), live_server.url, "lena", "pw-lena")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/projects/{project.slug}/examples/?label=P2")
    assert page.inner_text("[data-bulk-matching]") == "60"
    assert page.locator("[data-bulk-id]").count() == 50  # a page of rows; the filter reaches all 60
    page.check("[data-bulk-page]")
    assert page.inner_text("[data-bulk-checked]") == "50"
    page.check("[data-bulk-scope-all]")
    page.select_option("[data-bulk-action]", "approve")
    page.click("[data-bulk-apply]")
    page.wait_for_selector("[data-flash]")
    assert page.inner_text("[data-flash]") == (
        "Approve: 60 matched, 59 changed, 0 unchanged; 1 skipped: an expert is reviewing them right now."
    )
    assert page.url.endswith("/examples/?label=P2")
    assert Example.objects.filter(project=project, status="approved").count() == 59
    assert Example.objects.get(pk=held.pk).status == "pending"
    assert Review.objects.filter(reviewer__username="lena").count() == 59
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browse-bulk.png"), full_page=True)

    # A word search: the rows come at once, the count after them (the counters do not count words).
    page.goto(f"{live_server.url}/projects/{project.slug}/examples/?q=problem")
    page.wait_for_function("() => document.querySelector('[data-bulk-matching]').dataset.bulkMatching === '60'")
    assert page.inner_text("[data-bulk-matching]") == "60"

    # Two checked rows, a tag.
    page.goto(f"{live_server.url}/projects/{project.slug}/examples/?label=P1")
    page.check("[data-bulk-id]")
    page.select_option("[data-bulk-action]", "add_tag")
    page.fill("[data-bulk-bar] input[name=tag]", "odd_one")
    page.click("[data-bulk-apply]")
    page.wait_for_selector("[data-flash]")
    assert "Add tag: 1 matched, 1 changed" in page.inner_text("[data-flash]")
    assert Example.objects.get(project=project, label="P1").tags == ["odd_one"]
    page.context.close()
