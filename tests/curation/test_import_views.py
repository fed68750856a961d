"""The upload form's preview and the dashboard's import list, through Django's test client."""

import io

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from curation.models import Example, ImportJob

from ..helpers import chat, jsonl, post_jsonl

pytestmark = pytest.mark.django_db

DOLLY = [
    {"instruction": "Triage this ticket", "context": "db down", "response": "SEVERITY: P1", "category": "P1"},
    {"instruction": "Triage a typo", "context": "", "response": "SEVERITY: P4", "category": "P4", "source": "kb"},
]


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def preview(client, project, name: str, content: bytes, **data):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(reverse("curation:import_preview", args=[project.slug]), {"file": upload, **data})


def test_the_preview_suggests_a_mapping_from_the_keys_it_sees(project, lead):
    response = preview(login(lead), project, "dolly.jsonl", jsonl(DOLLY))
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-preview-needs-mapping" in html
    textarea = html.split("data-upload-mapping>")[1].split("</textarea>")[0]
    suggested = orjson.loads(textarea.replace("&quot;", '"'))
    assert suggested == {
        "user": ["instruction", "context"],
        "assistant": "response",
        "label": "category",
        "metadata": ["source"],
    }
    # The first rows as the suggested mapping makes them: the empty context skipped.
    assert html.count("data-preview-example") == 2
    assert "Triage this ticket<br><br>db down" in html and "Triage a typo</div>" in html
    assert not Example.objects.exists() and not ImportJob.objects.exists()


def test_the_preview_under_an_edited_mapping_and_a_bad_one(project, lead):
    client = login(lead)
    mapping = '{"user": "instruction", "assistant": "response"}'
    html = preview(client, project, "dolly.jsonl", jsonl(DOLLY), mapping=mapping).content.decode()
    assert "Triage this ticket</div>" in html
    assert "data-preview-ignored" in html and "category, context, source" in html
    bad = preview(client, project, "dolly.jsonl", jsonl(DOLLY), mapping='{"user": "instruction"}')
    assert bad.status_code == 400 and "must name the key(s) of assistant" in bad.content.decode()


def test_the_preview_of_csv_and_parquet(project, lead):
    import pyarrow as pa
    import pyarrow.parquet as pq

    client = login(lead)
    html = preview(client, project, "qa.csv", b"question,answer\nIs checkout down?,SEVERITY: P1\n").content.decode()
    assert "read as CSV" in html and "&quot;user&quot;: &quot;question&quot;" in html
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"prompt_text": "Login loops", "answer": "SEVERITY: P2"}]), buffer)
    html = preview(client, project, "qa.parquet", buffer.getvalue()).content.decode()
    # No key looks like the prompt: the person is asked to name it, and the row shows the error.
    assert "read as PARQUET" in html and "Name the keys of" in html and "data-preview-error" in html


def test_a_file_in_a_known_shape_needs_no_mapping(project, lead):
    html = preview(login(lead), project, "chat.jsonl", jsonl([chat("db down")])).content.decode()
    assert "data-preview-no-mapping" in html and "data-preview-needs-mapping" not in html
    assert "data-upload-mapping></textarea>" in html


def test_only_leads_preview(project, expert):
    assert preview(login(expert), project, "dolly.jsonl", jsonl(DOLLY)).status_code == 403


def test_the_dashboard_lists_partial_and_failed_imports(project, lead, lead_api):
    post_jsonl(lead_api, project.slug, jsonl([chat("a"), b"{"]), "?mode=partial")
    post_jsonl(lead_api, project.slug, jsonl([b"{"]), "?mode=partial")
    html = login(lead).get(reverse("curation:project_detail", args=[project.slug])).content.decode()
    assert 'data-import-status="partial"' in html and 'data-import-status="failed"' in html
    assert "data-upload-preview" in html and "data-preview-url" in html
