"""The management commands: import, export and the demo."""

import io

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.models import Example, ImportJob, Membership, Project, Revision

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
    assert any("edge_case" in tags for tags in examples.values_list("tags", flat=True))
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


def test_import_command_with_a_mapping_csv_and_parquet(project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    mapping = '{"user": ["instruction", "context"], "assistant": "response", "label": "category"}'
    source = tmp_path / "dolly.jsonl"
    rows = [
        {"instruction": "Triage", "context": "db down", "response": "SEVERITY: P1", "category": "P1", "id": 1},
        {"instruction": "Triage a typo", "context": "", "response": "SEVERITY: P4", "category": "P4", "id": 2},
    ]
    source.write_bytes(jsonl(rows))
    out = io.StringIO()
    call_command("import_examples", project.slug, str(source), "--mapping", mapping, stdout=out, stderr=io.StringIO())
    report = orjson.loads(out.getvalue())
    assert (report["status"], report["created"], report["ignored_keys"]) == ("succeeded", 2, {"id": 2})
    assert Example.objects.get(label="P4").messages[0]["content"] == "Triage a typo"

    table = tmp_path / "qa.csv"
    table.write_text("question,answer\nIs checkout down?,SEVERITY: P1\nBroken link,SEVERITY: P3\n")
    (tmp_path / "qa.json").write_text('{"user": "question", "assistant": "answer"}')
    out = io.StringIO()
    call_command("import_examples", project.slug, str(table), "--mapping", f"@{tmp_path / 'qa.json'}", stdout=out)
    assert orjson.loads(out.getvalue())["created"] == 2

    parquet = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "Login loops", "answer": "SEVERITY: P2"}]), parquet)
    out = io.StringIO()
    qa = '{"user": "question", "assistant": "answer"}'
    call_command("import_examples", project.slug, str(parquet), "--mapping", qa, stdout=out, stderr=io.StringIO())
    assert orjson.loads(out.getvalue())["created"] == 1
    assert Example.objects.count() == 5


def test_import_command_statuses(project, tmp_path):
    source = tmp_path / "half.jsonl"
    source.write_bytes(jsonl([chat("a"), b"{nope"]))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_examples", project.slug, str(source), "--mode", "partial", stdout=out, stderr=err)
    assert orjson.loads(out.getvalue())["status"] == "partial" and "1 line(s) rejected" in err.getvalue()
    source.write_bytes(jsonl([b"{nope", {"messages": []}]))
    with pytest.raises(CommandError, match="Every line"):
        call_command("import_examples", project.slug, str(source), "--mode", "partial", stdout=io.StringIO())
    source.write_bytes(b"\n")
    with pytest.raises(CommandError, match="no examples"):
        call_command("import_examples", project.slug, str(source), stdout=io.StringIO())


def test_import_command_refuses_a_bad_mapping_before_reading(project, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl([chat("a")]))
    with pytest.raises(CommandError, match="unknown target"):
        call_command("import_examples", project.slug, str(source), "--mapping", '{"user": "q", "answer": "a"}')
    with pytest.raises(CommandError, match="replaces --format"):
        call_command(
            "import_examples",
            project.slug,
            str(source),
            "--format",
            "openai",
            "--mapping",
            '{"user": "q", "assistant": "a"}',
        )
    assert not ImportJob.objects.exists()
