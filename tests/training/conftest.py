"""Training fixtures: a tiny base model built once per session, and a frozen version of demo data."""

import pytest

from curation import demo
from curation import services as curation_services
from curation.models import Example
from training.recipes import tiny_local

from ..helpers import jsonl, post_jsonl


@pytest.fixture(scope="session")
def small_base(tmp_path_factory):
    """tiny-local with a short pretraining: enough for the runs' mechanics, not for accuracy."""
    rows = demo.generate(count=200)
    documents = tiny_local.corpus_documents(row["messages"] for row in rows)
    return str(tiny_local.build(documents, tmp_path_factory.mktemp("models"), tiny_local.TinyConfig(pretrain_steps=40)))


@pytest.fixture
def version(project, lead, lead_api):
    """120 approved demo examples frozen into v1 (too few to be ready: runs need a written reason)."""
    rows = demo.generate(count=120)
    for row in rows:
        row["messages"][0]["content"] = "You are a support agent."
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return curation_services.dataset_version_freeze(project=project, user=lead)
