"""What the pages say to people and to screen readers: checks by their names, relative times, headings, the launch
form's descriptions, the charts' numbers as text (the layout and axe-core: test_browser_a11y.py)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import Draft

from .test_views import examples, form_for, login, url  # noqa: F401 (examples is a fixture)

pytestmark = pytest.mark.django_db
RAW_CHECK_IDS = ("min_examples", "all_reviewed", "label_balance", "no_leakage", "split_frozen", "format_conformance")


def test_a_draft_saved_seconds_ago_was_saved_just_now(project, examples, expert):  # noqa: F811
    client = login(expert)
    client.get(url("review_example", project, examples[0]))
    data = form_for(examples[0], content_2="SEVERITY: half-written")
    client.post(url("review_draft", project, examples[0]), data, HTTP_HX_REQUEST="true")
    page = client.get(url("review_example", project, examples[0])).content.decode()
    assert "saved just now" in page and "0 minutes" not in page
    Draft.objects.update(updated_at=timezone.now() - timedelta(minutes=5, seconds=3))
    again = client.get(url("review_example", project, examples[0])).content.decode()
    assert "saved 5\xa0minutes ago" in again  # timesince's non-breaking space


def test_the_review_page_has_a_heading_and_names_its_panel_by_the_example(project, examples, expert):  # noqa: F811
    client = login(expert)
    page = client.get(url("review_next", project)).content.decode()
    assert f'<h1 class="review-title" id="review-title">Example #{examples[0].pk}</h1>' in page
    assert re.search(r'<section class="review" data-review-panel[^>]*aria-labelledby="review-title"', page)
    assert 'id="review-progress"' in page  # what aria-describedby names
    empty = login(expert).get(url("review_next", project) + f"?after={examples[-1].pk}&label=P1").content.decode()
    assert "<h1" in empty


def test_the_tag_filter_placeholder_is_not_a_tag(project, examples, expert):  # noqa: F811
    page = login(expert).get(url("example_list", project)).content.decode()
    assert 'placeholder="edge_case"' not in page and 'name="tag" value="" size="10" placeholder="any tag"' in page


def test_the_dashboard_names_its_checks_and_gives_its_charts_numbers_as_text(project, version, expert):
    page = login(expert).get(url("project_detail", project)).content.decode()
    readiness = page.split("data-readiness", 1)[1].split("</section>", 1)[0]
    for raw in RAW_CHECK_IDS:
        assert f"<td>{raw}</td>" not in readiness
    assert "<td>Enough approved examples</td>" in readiness and "<td>Split frozen</td>" in readiness
    labels = page.split('data-chart-table="labels"', 1)[1].split("</details>", 1)[0]
    approved = version.counts["train"]["total"] + version.counts["val"]["total"] + version.counts["test"]["total"]
    counted = sum(int(n) for n in re.findall(r'<th scope="row">P\d</th><td class="num">(\d+)</td>', labels))
    assert counted == approved


def test_the_preflight_and_the_launch_error_name_the_failing_checks_in_words(project, version, lead):
    client = login(lead)
    page = client.get(f"/projects/{project.slug}/runs/").content.decode()
    verdict = page.split("data-readiness-verdict", 1)[1].split("</p>", 1)[0]
    assert "NOT READY" in verdict and "Enough approved examples" in verdict
    assert not any(raw in verdict for raw in RAW_CHECK_IDS)
    form = {"dataset_version": version.number, "base_model": "tiny-local", "method": "lora", "lora_r": 16}
    form |= {"lora_alpha": 32, "lora_dropout": 0.1, "lora_targets": "q_proj", "epochs": 1, "learning_rate": 1e-3}
    form |= {"batch_size": 16, "gradient_accumulation": 1, "max_seq_length": 1024, "seed": 0}
    refused = client.post(f"/projects/{project.slug}/runs/", form).content.decode()
    error = refused.split("data-override-error>", 1)[1].split("</p>", 1)[0]
    assert "the data is not ready (enough approved examples" in error
    assert not any(raw in error for raw in RAW_CHECK_IDS)


def test_every_aria_reference_of_the_launch_form_names_an_element(project, version, lead):
    page = login(lead).get(f"/projects/{project.slug}/runs/").content.decode()
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    references = re.findall(r'aria-(?:describedby|labelledby)="([^"]+)"', page)
    assert len(references) >= 4  # base model, LoRA targets, max steps, the override reason
    for reference in references:
        for name in reference.split():
            assert name in ids, f"aria reference {name} names no element"
