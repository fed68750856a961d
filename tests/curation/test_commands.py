"""The management commands: import, export and the demo."""

import io

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.models import Example, Membership, Project, Revision

from ..helpers import chat, jsonl

pytestmark = pytest.mark.django_db


def test_import_then_export_through_commands(project, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl([chat("a", label="P1"), chat("b", label="P2"), chat("a", label="P1")]))
    out = io.StringIO()
    call_command("import_examples", project.slug, str(source), stdout=out, stderr=io.StringIO())
    report = orjson.loads(out.getvalue())
    assert (report["created"], report["duplicates"]) == (2, 1)

    target = tmp_path / "out.jsonl"
    call_command("export_examples", project.slug, "--label", "P2", "-o", str(target), stderr=io.StringIO())
    assert [orjson.loads(line)["label"] for line in target.read_bytes().splitlines()] == ["P2"]


def test_atomic_import_command_fails_loudly_and_writes_nothing(project, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(jsonl([chat("a"), b"{nope"]))
    with pytest.raises(CommandError, match="1 line"):
        call_command("import_examples", project.slug, str(source), stdout=io.StringIO(), stderr=io.StringIO())
    assert Example.objects.count() == 0
    call_command(
        "import_examples", project.slug, str(source), "--mode", "partial", stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert Example.objects.count() == 1


def test_load_demo_builds_the_triage_project(django_user_model):
    out = io.StringIO()
    call_command("load_demo", "--count", "300", stdout=out)
    project = Project.objects.get(slug="support-triage")
    examples = Example.objects.filter(project=project)
    assert examples.count() == 300 + 10 + 12  # generated + edge cases + near duplicates; exact duplicates dropped
    labels = {label: examples.filter(label=label).count() for label in project.labels}
    assert max(labels, key=labels.get) == "P4"  # the imbalance the lead should see
    assert examples.filter(tags__contains=["edge_case"]).exists()
    assert examples.filter(status="approved").count() > 100
    assert Revision.objects.filter(example__project=project, kind="edit").exists()
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"lena": "lead", "maria": "expert", "alex": "expert"}
    for example in examples.iterator():
        answer = example.messages[-1]["content"]
        assert answer.startswith(f"SEVERITY: {example.label}\nIMPACT: ") and "\nACTION: " in answer
    assert "maria" in out.getvalue() and "fineline-demo" in out.getvalue()
    # Loading again changes nothing.
    call_command("load_demo", stdout=io.StringIO())
    assert Example.objects.filter(project=project).count() == 322
