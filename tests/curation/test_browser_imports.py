"""The upload form in a real Chromium: a CSV in another shape, previewed with a suggested mapping, then imported."""

import pytest

from curation.models import Example

from ..browser_helpers import ARTIFACTS, log_in
from ..helpers import chat, jsonl, service_env, start_worker, stop_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_lead_previews_a_csv_in_another_shape_and_imports_it_with_the_suggested_mapping(
    browser, live_server, project, tmp_path
):
    upload = tmp_path / "dolly.csv"
    upload.write_text(
        "instruction,context,response,category\n"
        'Triage this ticket,"db down\nin eu-1",SEVERITY: P1,P1\n'
        "Triage a typo,,SEVERITY: P4,P4\n"
        "No answer here,,,P2\n"
    )
    page = log_in(browser.new_context(), live_server.url, "lena", "pw-lena")
    page.goto(f"{live_server.url}/projects/{project.slug}/")
    page.set_input_files("[data-upload-form] input[type=file]", str(upload))
    page.wait_for_selector("[data-preview-needs-mapping]")
    suggested = page.input_value("[data-upload-mapping]")
    assert '"user": ["instruction", "context"]' in suggested and '"label": "category"' in suggested
    assert page.locator("[data-preview-example]").count() == 2
    assert "missing_value" in page.inner_text("[data-preview-rows]")
    # The lead drops the context from the mapping and previews again.
    page.fill("[data-upload-mapping]", '{"user": "instruction", "assistant": "response", "label": "category"}')
    page.click("[data-upload-repreview]")
    page.wait_for_selector("[data-preview-ignored]")
    assert "context" in page.inner_text("[data-preview-ignored]")
    page.select_option("[data-upload-form] select[name=mode]", "partial")
    page.click("[data-upload-form] button.primary")
    page.wait_for_selector("[data-upload-errors]")
    report = page.inner_text("[data-upload-report]")
    assert "Imported in part: 2 created" in report and "line 5" in report  # the first record spans lines 2-3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import-mapping.png"), full_page=True)
    assert sorted(e.messages[0]["content"] for e in Example.objects.filter(project=project)) == [
        "Triage a typo",
        "Triage this ticket",
    ]
    page.context.close()


# Every text the upload's status line shows, kept on the page (a function: the CSP forbids eval'd expressions).
RECORD_STATUS = """() => {
  window.uploadStatuses = [];
  const status = document.querySelector("[data-upload-status]");
  new MutationObserver(() => window.uploadStatuses.push(status.textContent)).observe(status, {childList: true});
}"""


def test_a_large_upload_shows_the_import_progress_then_the_report(browser, live_server, project, settings, tmp_path):
    # Over 10 kB an upload is imported by a worker: the page follows the job, then shows the same report.
    settings.VAR_DIR = tmp_path
    settings.FINELINE_IMPORT_SYNC_MAX_BYTES = 10_000
    worker = start_worker(service_env(FINELINE_VAR_DIR=tmp_path))
    try:
        upload = tmp_path / "tickets.jsonl"
        rows = [chat(f"ticket {n}: the export does nothing", label="P3") for n in range(40_000)]
        upload.write_bytes(jsonl([*rows[:100], {"messages": "none"}, *rows[100:]]))
        page = log_in(browser.new_context(), live_server.url, "lena", "pw-lena")
        page.goto(f"{live_server.url}/projects/{project.slug}/")
        page.set_input_files("[data-upload-form] input[type=file]", str(upload))
        page.wait_for_selector("[data-upload-preview] *")
        page.select_option("[data-upload-form] select[name=mode]", "partial")
        page.evaluate(RECORD_STATUS)
        page.click("[data-upload-form] button.primary")
        page.wait_for_selector("[data-upload-errors]", timeout=180_000)
        report = page.inner_text("[data-upload-report]")
        assert "Imported in part: 40000 created, 0 duplicates skipped, 1 rejected" in report and "line 101" in report
        statuses = page.evaluate("() => window.uploadStatuses")
        assert "Uploaded; waiting for a worker to import it…" in statuses, statuses
        assert any(s.startswith("Importing… ") and "lines read" in s for s in statuses), statuses
        assert statuses[-1] == "Done." and page.get_attribute("[data-upload-progress]", "value") == "100"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "import-queued.png"), full_page=True)
        assert Example.objects.filter(project=project).count() == 40_000
        page.context.close()
    finally:
        output = stop_worker(worker)
    assert "Traceback" not in output, output
