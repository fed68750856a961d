"""The review queue in a real Chromium: keyboard-only review, simultaneous "next", and a conflict that loses nothing."""

import re

import pytest

from curation import services
from curation.models import Example, Revision

from ..browser_helpers import ARTIFACTS, log_in
from ..helpers import chat, jsonl, post_jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def queue(project, lead_api, make_user):
    rows = [
        chat(f"Ticket {i}: the export to CSV fails for user {i}", answer="SEVERITY: P3\nIMPACT: one user\nACTION: look")
        for i in range(6)
    ]
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    alex = make_user("alex")
    services.membership_set(project=project, user=alex, role="expert")
    return list(Example.objects.filter(project=project).order_by("id"))


def panel_example(page) -> int:
    return int(page.get_attribute("[data-review-panel]", "data-example"))


def test_an_expert_reviews_three_examples_with_the_keyboard_alone(browser, live_server, project, queue):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = log_in(context, live_server.url, "maria", "pw-maria")
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")
    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('shortcuts').open")
    seen = []
    for number in range(3):
        current = panel_example(page)
        seen.append(current)
        page.keyboard.press("2")  # label P2
        page.keyboard.press("e")  # into the assistant's answer
        page.keyboard.press("End")
        page.keyboard.type(f" (checked {number})")
        page.keyboard.press("Escape")  # back to the shortcuts
        page.wait_for_selector("[data-format=ok]")
        if number == 0:
            page.keyboard.press("t")  # edge case
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
        page.keyboard.press("a")
        page.wait_for_function(f"() => document.querySelector('[data-review-panel]').dataset.example != '{current}'")
    assert seen == [e.pk for e in queue[:3]]
    assert page.evaluate("document.activeElement.hasAttribute('data-review-panel')")
    assert re.search(rf"/projects/{project.slug}/examples/{queue[3].pk}/review/$", page.url)
    for number, example in enumerate(queue[:3]):
        example.refresh_from_db()
        assert (example.status, example.label) == ("approved", "P2")
        assert example.messages[-1]["content"].endswith(f"ACTION: look (checked {number})")
        assert example.reviews.get().reviewer.username == "maria"
    assert queue[0].tags == ["edge_case"]
    context.close()


def test_two_experts_asking_for_next_at_once_get_different_examples(browser, live_server, project, queue):
    pages = []
    for username in ("maria", "alex"):
        context = browser.new_context()
        pages.append(log_in(context, live_server.url, username, f"pw-{username}"))
    ask = (
        f"() => {{ window.claim = fetch('/projects/{project.slug}/review/', {{headers: {{'HX-Request': 'true'}}}})"
        ".then(r => r.text()); }"
    )
    for page in pages:
        page.evaluate(ask)  # both requests are in flight before either answer is read
    answers = [page.evaluate("() => window.claim") for page in pages]
    claimed = [int(re.search(r'data-example="(\d+)"', answer).group(1)) for answer in answers]
    assert claimed[0] != claimed[1]
    held = dict(Example.objects.filter(pk__in=claimed).values_list("pk", "locked_by__username"))
    assert sorted(held.values()) == ["alex", "maria"]
    for page in pages:
        page.context.close()


def test_a_stale_save_shows_the_conflict_and_loses_nothing(browser, live_server, project, queue):
    example = queue[0]
    maria = log_in(browser.new_context(), live_server.url, "maria", "pw-maria")
    maria.goto(f"{live_server.url}/projects/{project.slug}/examples/{example.pk}/review/")
    # Maria's tab sits idle past her lock; Alex takes the example and saves his edit.
    Example.objects.filter(pk=example.pk).update(locked_by=None, locked_until=None)
    alex = log_in(browser.new_context(), live_server.url, "alex", "pw-alex")
    alex.goto(f"{live_server.url}/projects/{project.slug}/examples/{example.pk}/review/")
    alex.fill("textarea[data-answer]", "SEVERITY: P2\nIMPACT: alex's impact\nACTION: alex's action")
    alex.check("[data-label-key='2']")
    alex.click("[data-decision=approved]")
    alex.wait_for_function(f"() => document.querySelector('[data-review-panel]').dataset.example != '{example.pk}'")

    maria.fill("textarea[data-answer]", "SEVERITY: P1\nIMPACT: maria's impact\nACTION: maria's action")
    maria.check("[data-label-key='1']")
    maria.click("[data-decision=approved]")
    maria.wait_for_selector("[data-conflict]")
    assert "Edited by alex" in maria.inner_text("[data-conflict]")
    assert "alex's impact" in maria.inner_text("[data-theirs]")
    assert "maria's impact" in maria.inner_text("[data-mine]")
    assert "maria's impact" in maria.input_value("textarea[data-answer]")  # her edit is still in the editor
    example.refresh_from_db()
    assert (example.label, example.version) == ("P2", 2)  # nothing was overwritten
    ARTIFACTS.mkdir(exist_ok=True)
    maria.screenshot(path=str(ARTIFACTS / "review-conflict.png"), full_page=True)

    maria.click("[data-keep-mine]")
    maria.wait_for_function(f"() => document.querySelector('[data-review-panel]').dataset.example != '{example.pk}'")
    example.refresh_from_db()
    assert (example.label, example.version) == ("P1", 3)
    assert "maria's impact" in example.messages[-1]["content"]
    kept = [r.messages[-1]["content"] for r in Revision.objects.filter(example=example).order_by("version")]
    assert any("alex's impact" in text for text in kept) and any("maria's impact" in text for text in kept)


def test_the_dashboard_draws_its_charts_and_the_verdict(browser, live_server, project, queue, lead):
    Example.objects.filter(project=project).update(status="approved")
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    page = log_in(browser.new_context(viewport={"width": 1280, "height": 900}), live_server.url, "lena", "pw-lena")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('label-chart'))")
    drawn = page.evaluate(
        "['label-chart', 'token-chart'].map(id => Chart.getChart(document.getElementById(id)).data.datasets.length)"
    )
    assert drawn == [3, 3] and errors == []
    assert "NOT READY" in page.inner_text("[data-readiness]")
    assert "✗" in page.inner_text("[data-check=min_examples]")
    page.click("text=Freeze version")
    page.wait_for_selector("text=Version 1 frozen")
    assert "v1" in page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.context.close()


def test_a_lead_uploads_a_file_and_reads_the_line_numbered_report(browser, live_server, project, tmp_path):
    upload = tmp_path / "tickets.jsonl"
    upload.write_bytes(jsonl([chat("first upload"), b"{not json", chat("second upload")]))
    page = log_in(browser.new_context(), live_server.url, "lena", "pw-lena")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.set_input_files("[data-upload-form] input[type=file]", str(upload))
    page.select_option("[data-upload-form] select[name=mode]", "partial")
    page.click("[data-upload-form] button")
    page.wait_for_selector("[data-upload-errors]")
    assert page.evaluate("document.querySelector('[data-upload-progress]').value") == 100
    assert "2 created" in page.inner_text("[data-upload-report]")
    assert "line 2" in page.inner_text("[data-upload-errors]") and "invalid_json" in page.inner_text("body")
    csv_text = page.evaluate("fetch(document.querySelector('[data-upload-errors-link]').href).then(r => r.text())")
    assert csv_text.splitlines()[0] == "line,code,message" and csv_text.splitlines()[1].startswith("2,invalid_json")
    assert Example.objects.filter(project=project).count() == 2
    page.context.close()
