"""Each page loads the scripts it uses: the review panel's on the review pages only, the confirmation everywhere."""

import pytest
from django.urls import reverse

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db


def scripts(client, name: str, project) -> str:
    page = client.get(reverse(f"curation:{name}", args=[project.slug]))
    assert page.status_code == 200
    return page.content.decode()


def test_the_review_script_loads_on_the_review_pages_only(client, project, expert, lead_api):
    client.force_login(expert)
    empty = scripts(client, "review_next", project)  # nothing imported yet: the empty queue
    assert "data-queue-empty" in empty and "review.js" in empty
    assert post_jsonl(lead_api, project.slug, jsonl([chat("ticket")])).status_code == 201
    review = scripts(client, "review_next", project)
    assert "data-review-panel" in review and "review.js" in review
    for page in (review, empty):
        assert page.count("review.js") == 1 and "confirm.js" in page
    for name in ("project_detail", "example_list"):
        other = scripts(client, name, project)
        assert "review.js" not in other and "confirm.js" in other
