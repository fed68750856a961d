"""Token lengths from the data to the run: the scan counts what a run will see, readiness and the pre-flight name the
examples over the run's max length, and the run says how many it cut. tiny-local's build reports its stages and
reads a bounded corpus."""

import random
from pathlib import Path

import pytest
from django.test import override_settings

from curation import demo
from curation import services as curation_services
from curation.models import DatasetVersionItem, Example
from training import services
from training.models import TrainingRun
from training.recipes import sft, tiny_local

from ..helpers import jsonl, post_jsonl

WORDS = (
    "sync job retried request timeout gateway replica database export invoice region latency crash payment upload "
    "report screen token session cache queue worker shard backup restore schema mapping webhook trigger quota folder"
).split()
MAX_LENGTH = 512


def long_log(seed: int, words: int = 400) -> str:
    """A pasted log, different for each ticket (no two of them are near duplicates)."""
    rng = random.Random(seed)
    return " ".join(
        rng.choice(WORDS) + (f" {rng.randint(0, 99999)}" if rng.random() < 0.1 else "") for _ in range(words)
    )


@pytest.fixture
def long_version(project, lead, lead_api):
    """About 80 approved demo tickets, one in six with a long log pasted in, frozen into v1."""
    rows = demo.generate(count=60)
    for number, row in enumerate(rows):
        row["messages"] = [dict(message) for message in row["messages"]]
        row["messages"][0]["content"] = "You are a support agent."
        if number % 6 == 0:
            row["messages"][1]["content"] += "\n\nHere is the log:\n" + long_log(number)
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return curation_services.dataset_version_freeze(project=project, user=lead)


def sequence_lengths(tokenizer, examples) -> dict[int, int]:
    """Each example's tokens as the recipe sees them: the whole conversation through the chat template."""
    return {
        example.pk: len(tokenizer.apply_chat_template(example.messages, tokenize=True, return_dict=True)["input_ids"])
        for example in examples
    }


@pytest.mark.django_db
@pytest.mark.slow
def test_with_the_tokenizer_known_the_scan_counts_what_the_run_sees(project, long_version, small_base):
    curation_services.project_update(project=project, tokenizer=small_base)
    scan = curation_services.quality_scan_run(scan=curation_services.quality_scan_start(project=project))
    assert scan.stats["exact"] is True and scan.stats["error"] is None
    # <|role|>\n ... <|end|>\n around each message; no newline after the answer's end (the template's trim_blocks)
    assert scan.stats["template_tokens"] == {"per_example": 0, "system": 4, "user": 4, "assistant": 3}
    real = sequence_lengths(sft.load_tokenizer(small_base), Example.objects.filter(project=project))
    assert dict(scan.stats["longest"]) == real  # every example kept (fewer than LONGEST_KEPT), each exact
    assert [tokens for _, tokens in scan.stats["longest"]] == sorted(real.values(), reverse=True)


@pytest.mark.django_db
@pytest.mark.slow
def test_readiness_and_the_preflight_name_the_examples_over_the_max_length(
    project, long_version, small_base, client, lead, lead_api
):
    curation_services.project_update(project=project, tokenizer=small_base)
    curation_services.quality_scan_run(scan=curation_services.quality_scan_start(project=project))
    real = sequence_lengths(sft.load_tokenizer(small_base), Example.objects.filter(project=project))
    over = {pk for pk, tokens in real.items() if tokens > MAX_LENGTH}
    assert len(over) >= 10
    train = set(
        DatasetVersionItem.objects.filter(version=long_version, split="train").values_list("example_id", flat=True)
    )
    over_train = over & train
    assert over_train

    from curation import selectors as curation_selectors

    checks = {c["id"]: c for c in curation_selectors.readiness(project=project, max_length=MAX_LENGTH)["checks"]}
    check = checks["token_length"]
    assert check["passed"] is False and check["threshold"] == "none over 512 tokens"
    assert check["detail"].startswith(f"{len(over)} approved examples are longer than 512 tokens: #")
    longest = max(over, key=real.get)
    assert f"#{longest} ({real[longest]:,})" in check["detail"]
    # Without a run being prepared: the project's max length, a run's default (2,048 here): nothing over it.
    assert {c["id"]: c for c in curation_selectors.readiness(project=project)["checks"]}["token_length"]["passed"]

    # The API pre-flight at the run's max length: readiness judges by it, and the training examples over it are named.
    body = {"dataset_version": long_version.number, "base_model": small_base, "options": {"max_seq_length": 512}}
    figures = lead_api.post(f"/api/v1/projects/{project.slug}/training-runs/preflight/", body, format="json").json()
    assert figures["max_length"] == MAX_LENGTH and "token_length" in figures["failing_checks"]
    assert figures["over_length"]["count"] == len(over_train) and figures["over_length"]["exact"] is True
    named = [example["id"] for example in figures["over_length"]["examples"]]  # the ten longest, longest first
    assert named == sorted(over_train, key=lambda pk: (-real[pk], -pk))[:10]
    assert [example["tokens"] for example in figures["over_length"]["examples"]] == [real[pk] for pk in named]
    assert any(
        f"{len(over_train)} training example" in w and "longer than 512 tokens" in w for w in figures["warnings"]
    )
    roomy = lead_api.post(
        f"/api/v1/projects/{project.slug}/training-runs/preflight/",
        {**body, "options": {"max_seq_length": 4096}},
        format="json",
    ).json()
    assert roomy["over_length"]["count"] == 0 and "token_length" not in roomy["failing_checks"]

    # The launch form's htmx pre-flight says the same.
    client.force_login(lead)
    form = {
        "base_model": small_base, "method": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1,
        "lora_targets": "q_proj,k_proj,v_proj,o_proj", "epochs": 1, "learning_rate": 5e-3, "batch_size": 8,
        "gradient_accumulation": 1, "max_seq_length": 512, "seed": 0, "dataset_version": long_version.number,
    }  # fmt: skip
    page = client.post(f"/projects/{project.slug}/runs/preflight/", form).content.decode()
    assert "data-over-length" in page and f"<strong>{len(over_train)}</strong>" in page
    assert all(f"#{pk}</a>" in page for pk in named) and ("…" in page) == (len(over_train) > 10)
    # The launch form starts from the project's max length.
    assert 'name="max_seq_length" value="2048"' in client.get(f"/projects/{project.slug}/runs/").content.decode()


@pytest.mark.django_db
@pytest.mark.slow
def test_a_run_reports_how_many_training_examples_it_truncated(project, lead, long_version, small_base, tmp_path):
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=long_version,
        base_model=small_base,
        options={"max_steps": 2, "batch_size": 8, "max_seq_length": MAX_LENGTH},
        override_readiness="test",
    )
    with override_settings(VAR_DIR=tmp_path):
        done = services.training_run_execute(run_id=run.pk)
    assert done.status == "succeeded", done.error
    items = DatasetVersionItem.objects.filter(version=long_version, split="train")
    tokenizer = sft.load_tokenizer(small_base)
    over = [
        item.example_id
        for item in items.order_by("id")
        if len(tokenizer.apply_chat_template(item.messages, tokenize=True, return_dict=True)["input_ids"]) > MAX_LENGTH
    ]
    cut = done.summary["truncation"]
    assert over and cut["truncated"] == len(over) and cut["truncated_ids"] == over
    assert cut["examples"] == items.count() and cut["max_seq_length"] == MAX_LENGTH
    assert cut["dropped"] == len(over)  # the log comes before the answer: nothing of it is left
    assert f"{len(over)} of {items.count()} training examples were longer than 512 tokens and were cut" in done.log

    from django.test import Client

    client = Client()
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/runs/{run.pk}/").content.decode()
    assert (
        f'data-truncated="{len(over)}"' in page and f"Truncated <strong>{len(over)} of {items.count()}</strong>" in page
    )
    from ..helpers import token_client

    detail = token_client(lead).get(f"/api/v1/projects/{project.slug}/training-runs/{run.pk}/").json()
    assert detail["summary"]["truncation"]["truncated"] == len(over)


@pytest.mark.django_db
@pytest.mark.slow
def test_the_run_page_shows_the_base_models_build_stage_by_stage(project, lead, version, tmp_path, monkeypatch):
    """tiny-local is built by the run (here with a short pretraining): the page shows each stage and its progress,
    not "step 0 / ?"; the log keeps them."""
    from django.test import Client

    client = Client()
    client.force_login(lead)
    run = services.training_run_create(
        project=project,
        user=lead,
        dataset_version=version,
        options={"max_steps": 1, "batch_size": 8},
        override_readiness="test",
    )
    url = f"/projects/{project.slug}/runs/{run.pk}/"
    seen = []
    build = tiny_local.build

    def short_build(documents, cache_dir, on_log=None):
        def watch(entry):
            on_log(entry)
            row = TrainingRun.objects.get(pk=run.pk)
            seen.append((row.stage, row.stage_step, row.stage_total, row.total_steps))
            if entry["stage"] == "pretraining the base" and entry["step"] == 25:
                seen.append(client.get(url, headers={"HX-Request": "true"}).content.decode())

        return build(documents, cache_dir, tiny_local.TinyConfig(pretrain_steps=30), on_log=watch)

    monkeypatch.setattr(tiny_local, "build", short_build)
    with override_settings(VAR_DIR=tmp_path):
        done = services.training_run_execute(run_id=run.pk)
    assert done.status == "succeeded", done.error
    stages = [entry for entry in seen if isinstance(entry, tuple)]
    assert [stage for stage, *_ in stages] == [
        "building the tokenizer",
        "tokenizing the corpus",
        "pretraining the base",
        "pretraining the base",
        "pretraining the base",
        "saving the base",
    ]
    assert stages[3][1:3] == (25, 30) and stages[3][3] == 0  # no training step yet
    live = next(entry for entry in seen if isinstance(entry, str))
    assert "pretraining the base 25 / 30 steps" in live and "step 0 /" not in live
    train = version.counts["train"]["total"]
    assert done.log.startswith("sampling the base's pretraining corpus\nbuilding the tokenizer (")
    assert "pretraining the base 30/30 loss" in done.log and f"tokenizing {train} training examples" in done.log
    assert done.stage == "" and "step 1 / 1" in client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert Path(done.adapter_dir).exists()


# --- tiny-local's build, without Django ---------------------------------------------------------------------------


def long_rows(count: int, seed: int = 0, tickets: int = 200) -> list[list[dict]]:
    """Demo tickets with a 3-8 KB context each, answers in the demo's format."""
    base = demo.generate(count=tickets)
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        messages = [dict(message) for message in base[number % len(base)]["messages"]]
        messages[1]["content"] += "\n\n" + long_log(seed * 1_000_000 + number, words=rng.randint(400, 1100))
        rows.append(messages)
    return rows


def test_the_corpus_is_bounded_deterministic_and_keeps_every_answer():
    rows = long_rows(3000)  # about 17M characters
    documents = tiny_local.corpus_documents(rows)
    assert sum(map(len, documents)) <= tiny_local.CORPUS_CHARS
    assert max(map(len, documents)) <= tiny_local.DOCUMENT_CHARS
    assert len(documents) == len(set(documents))  # each distinct text once
    answers = {messages[-1]["content"] for messages in rows}
    assert answers <= set(documents)  # every answer is in: the base must see every token they use
    shuffled = list(rows)
    random.Random(1).shuffle(shuffled)
    assert sorted(tiny_local.corpus_documents(shuffled)) == sorted(documents)  # the same sample, whatever the order
    # A corpus within the bound is taken whole, as it comes (the demo's, so its model stays the same).
    demo_rows = [row["messages"] for row in demo.generate()[:640]]
    whole = tiny_local.corpus_documents(demo_rows)
    assert whole == tiny_local.GENERIC + [message["content"] for messages in demo_rows for message in messages]


def test_a_sampled_corpus_still_has_every_token_of_the_answers(tmp_path):
    rows = long_rows(1500, seed=2, tickets=900)
    answers = [messages[-1]["content"] for messages in rows]
    documents = tiny_local.corpus_documents(rows, max_chars=20_000)
    assert len(set(answers) & set(documents)) < len(set(answers)) / 2  # only some of the answers are in
    base = tiny_local.build(documents, tmp_path, tiny_local.TinyConfig(pretrain_steps=1))
    tokenizer = sft.load_tokenizer(str(base))
    seen = {token for ids in tokenizer(documents, add_special_tokens=False)["input_ids"] for token in ids}
    used = {token for ids in tokenizer(answers, add_special_tokens=False)["input_ids"] for token in ids}
    assert used <= seen


def test_the_build_reports_its_stages_and_a_cached_build_says_so(tmp_path):
    documents = tiny_local.corpus_documents(row["messages"] for row in demo.generate(count=100))
    log = []
    tiny_local.build(documents, tmp_path, tiny_local.TinyConfig(pretrain_steps=30), on_log=log.append)
    assert all(entry["event"] == "build" for entry in log)
    assert [(e["stage"], e["step"], e["total"]) for e in log] == [
        ("building the tokenizer", 0, 0),
        ("tokenizing the corpus", 0, 0),
        ("pretraining the base", 0, 30),
        ("pretraining the base", 25, 30),
        ("pretraining the base", 30, 30),
        ("saving the base", 0, 0),
    ]
    assert log[0]["characters"] == sum(map(len, documents)) and "loss" in log[-2]
    again = []
    tiny_local.build(documents, tmp_path, tiny_local.TinyConfig(pretrain_steps=30), on_log=again.append)
    assert [entry["stage"] for entry in again] == ["base model found in the cache"]


def test_the_recipe_counts_what_it_truncates_and_what_it_drops(small_base):
    tokenizer = sft.load_tokenizer(small_base)
    short = demo.generate(count=20)
    rows = [{"messages": row["messages"], "id": 100 + number} for number, row in enumerate(short)]
    long_context = [dict(message) for message in short[0]["messages"]]
    long_context[1]["content"] += " " + long_log(1)
    long_answer = [dict(message) for message in short[1]["messages"]]
    long_answer[2]["content"] += " " + long_log(2)
    rows += [{"messages": long_context, "id": 7}, {"messages": long_answer, "id": 8}]
    encoded, report = sft.encode_counted(tokenizer, rows, 256)
    assert report["truncated"] == 2 and report["truncated_ids"] == [7, 8] and report["dropped"] == 1
    assert len(encoded) == len(rows) - 1 and all(len(ids) <= 256 for ids, _ in encoded)
    assert report["longest"] > 256 and report["examples"] == len(rows)
    assert encoded == sft.encode(tokenizer, rows, 256)
    # Rows without ids are named by their index.
    assert sft.encode_counted(tokenizer, [{"messages": long_context}], 256)[1]["truncated_ids"] == [0]


# --- The estimate and the readiness check, without a database -------------------------------------------------------


DOC_MODULES = (
    "argparse asyncio collections csv datetime decimal difflib email functools http.client inspect json logging os "
    "pathlib random re shutil socket statistics string subprocess tarfile textwrap threading unittest zipfile pickle "
    "doctest pdb optparse smtplib configparser enum contextlib"
).split()


def python_docs() -> list[str]:
    """English prose with some code in it, found on every machine: paragraphs of the standard library's docstrings."""
    import importlib
    import inspect

    paragraphs = set()
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        members = [
            value for _, value in inspect.getmembers(module, lambda v: inspect.isclass(v) or inspect.isfunction(v))
        ]
        for item in [module, *members]:
            if item is module or getattr(item, "__module__", "") == module.__name__:
                paragraphs.update(p for p in (inspect.getdoc(item) or "").split("\n\n") if len(p) > 150)
    texts = sorted(paragraphs)
    random.Random(0).shuffle(texts)
    return texts


def test_the_estimate_is_calibrated_against_a_byte_level_bpe():
    """tiny-local's tokenizer (a byte-level BPE trained on the texts themselves) on prose and on tickets: the
    estimate lands within its stated error on both; UTF-8 bytes / 4 was well below on the prose."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from curation import services as curation_services

    groups = {
        "prose": python_docs(),
        "tickets": [m["content"] for row in demo.generate(count=400) for m in row["messages"][1:]],
    }
    ratios = {}
    for name, texts in groups.items():
        half = len(texts) // 2
        raw = Tokenizer(models.BPE(unk_token=None))
        raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        raw.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=2048, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        raw.train_from_iterator(texts[:half], trainer=trainer)
        held = texts[half:]
        real = sum(len(encoding.ids) for encoding in raw.encode_batch(held))
        ratios[name] = (
            sum(map(curation_services.token_estimate, held)) / real,
            sum(-(-len(text.encode()) // 4) for text in held) / real,
        )
    low, high = curation_services.ESTIMATE_ERROR
    assert all(1 + low <= estimate <= 1 + high for estimate, _ in ratios.values()), ratios
    estimate, former = ratios["prose"]
    assert abs(estimate - 1) < abs(former - 1) and former < 0.85, ratios  # bytes / 4 was well below on prose


def lengths(count: int, **overrides) -> dict:
    examples = [{"id": 40 + n, "tokens": 3000 - n} for n in range(min(count, 10))]
    return {
        "max_length": 1024,
        "count": count,
        "complete": True,
        "examples": examples,
        "near": 0,
        "exact": True,
        "counted_by": "tokens counted with the tokenizer of x",
        **overrides,
    }


def test_the_readiness_check_names_the_examples_over_the_max_length():
    from curation import quality

    def check(stats):
        base = {
            "approved": 1200,
            "label_counts": {"P1": 300, "P2": 300, "P3": 300, "P4": 300},
            "edge_cases": 100,
            "scan": {"threshold": 0.85},
            "duplicate_clusters": 0,
            "format_kind": "regex",
            "format_checked": 1200,
            "format_ok": 1200,
            "label_only_share": 0.0,
            "version": {"number": 1, "size": 1200, "not_approved_now": 0, "leaking_clusters": 0},
            **stats,
        }
        verdict = quality.readiness(base)
        return verdict["ready"], {c["id"]: c for c in verdict["checks"]}["token_length"]

    ready, result = check({"token_lengths": lengths(0)})
    assert ready and result["passed"] and "No approved example is longer than 1,024 tokens" in result["detail"]
    ready, result = check({"token_lengths": lengths(12)})
    assert not ready and not result["passed"] and result["threshold"] == "none over 1,024 tokens"
    assert result["detail"].startswith("12 approved examples are longer than 1,024 tokens: #40 (3,000), #41 (2,999)")
    assert "#49 (2,991) and 2 more. A run at 1,024 tokens cuts them" in result["detail"]
    _, result = check({"token_lengths": lengths(1)})
    assert result["detail"].startswith("1 approved example is longer than 1,024 tokens: #40 (3,000).")
    _, result = check({"token_lengths": lengths(1000, complete=False, exact=False)})
    assert result["detail"].startswith("At least 1,000 approved examples are longer than 1,024 tokens (estimated)")
    ready, result = check({"token_lengths": lengths(0, exact=False, near=3)})
    assert ready and "3 more are within the estimate's error of the limit" in result["detail"]
    ready, result = check({"token_lengths": None, "scan": None})
    assert not ready and result["status"] == "unmeasured" and "run the quality scan" in result["detail"]
