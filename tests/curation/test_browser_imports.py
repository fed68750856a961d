"""The upload form in a real Chromium: a CSV in another shape, previewed with a suggested mapping, then imported."""

import pytest

from curation.models import Example

from ..browser_helpers import ARTIFACTS, log_in

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
