"""Duplicates, splits, dataset versions and the readiness verdict."""

import random
from collections import Counter

import orjson
import pytest

from curation import quality, selectors, services
from curation.models import DatasetVersionItem, Example, QualityScan

from ..helpers import chat, jsonl, post_jsonl

# --- Pure rules ------------------------------------------------------------------------------------------------


def test_splits_are_stratified_deterministic_and_keep_groups_whole():
    groups = [(i, "P4" if i % 4 else "P1", 1) for i in range(1, 1001)] + [(5000, "P4", 7)]
    first = quality.assign_splits(groups, train=0.8, val=0.1, seed=1)
    assert first == quality.assign_splits(groups, train=0.8, val=0.1, seed=1)
    assert first != quality.assign_splits(groups, train=0.8, val=0.1, seed=2)
    for label in ("P1", "P4"):
        sizes = Counter()
        for group, stratum, size in groups:
            if stratum == label:
                sizes[first[group]] += size
        total = sum(sizes.values())
        assert abs(sizes["train"] / total - 0.8) < 0.02 and abs(sizes["test"] / total - 0.1) < 0.02
    assert first[5000] in {"train", "val", "test"}  # the 7-example cluster went to exactly one split


def test_near_duplicates_are_found_with_high_recall():
    rng = random.Random(3)
    words = "database login export invoice sync region latency crash payment upload report screen".split()
    base = [" ".join(rng.choice(words) for _ in range(40)) + f" ticket {i}" for i in range(300)]
    items = [(i, [{"role": "user", "content": text}]) for i, text in enumerate(base)]
    planted = {}
    for i in range(0, 300, 10):  # a near copy: one word changed at the end
        planted[1000 + i] = i
        items.append((1000 + i, [{"role": "user", "content": base[i] + " please"}]))
    items.append((2000, [{"role": "user", "content": "  " + base[5].upper() + " "}]))  # exact after normalising
    clusters = quality.duplicate_clusters(items, threshold=0.85)
    found = sum(1 for copy, original in planted.items() if clusters.get(copy) == clusters.get(original) is not None)
    assert found / len(planted) >= 0.95
    assert clusters[2000] == clusters[5] == 5
    false = [i for i in range(300) if i in clusters and i % 10 and i != 5]
    assert false == []


def stats(**overrides):
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
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "check, failing",
    [
        ("min_examples", {"approved": 499}),
        ("all_reviewed", {"version": {"number": 1, "size": 10, "not_approved_now": 2, "leaking_clusters": 0}}),
        ("label_balance", {"label_counts": {"P1": 40, "P4": 400}}),
        ("edge_cases", {"edge_cases": 10}),
        ("duplicates", {"duplicate_clusters": 3}),
        ("no_leakage", {"version": {"number": 1, "size": 10, "not_approved_now": 0, "leaking_clusters": 1}}),
        ("format_conformance", {"format_ok": 1000}),
        ("split_frozen", {"version": None}),
    ],
)
def test_each_readiness_check_passes_and_fails(check, failing):
    passing = quality.readiness(stats())
    assert passing["ready"] is True
    assert {c["id"]: c["passed"] for c in passing["checks"]}[check] is True
    verdict = quality.readiness(stats(**failing))
    result = {c["id"]: c for c in verdict["checks"]}[check]
    assert verdict["ready"] is False and result["passed"] is False and result["threshold"]


def test_readiness_details_and_advice():
    verdict = quality.readiness(
        stats(approved=640, label_counts={"P1": 40, "P2": 100, "P4": 500}, label_only_share=0.95)
    )
    balance = {c["id"]: c for c in verdict["checks"]}["label_balance"]
    assert "P1: 127 more approved examples needed" in balance["detail"]
    assert "1,000-5,000 is the ideal range" in {c["id"]: c for c in verdict["checks"]}["min_examples"]["detail"]
    assert any("embeddings + classifier" in advice for advice in verdict["advice"])
    assert any("probably not worth it" in a for a in quality.readiness(stats(base_model_score=0.93))["advice"])


# --- Against the database ---------------------------------------------------------------------------------------


@pytest.fixture
def approved(project, lead, lead_api):
    rows = []
    for i in range(60):
        label = ["P1", "P2", "P3", "P4", "P4", "P4"][i % 6]
        answer = f"SEVERITY: {label}\nIMPACT: case {i}\nACTION: act"
        rows.append(
            chat(
                f"customer {i} reports problem number {i} with the billing export screen",
                answer,
                label=label,
                tags=["edge_case"] if i % 10 == 0 else [],
            )
        )
    rows.append(
        chat(
            "customer 0 reports problem number 0 with the billing export screen today",
            label="P1",
            answer="SEVERITY: P1\nIMPACT: case 0\nACTION: act",
        )
    )  # a near duplicate of ticket 0
    rows.append(chat("not in the format", answer="just words", label="P2"))
    assert post_jsonl(lead_api, project.slug, jsonl(rows)).status_code == 201
    Example.objects.filter(project=project).update(status="approved")
    return list(Example.objects.filter(project=project).order_by("id"))


@pytest.mark.django_db
def test_the_quality_scan_stores_clusters_format_and_token_lengths(project, approved):
    scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
    assert scan.status == "succeeded" and scan.examples == 62
    first, near = Example.objects.get(pk=approved[0].pk), Example.objects.get(pk=approved[60].pk)
    assert first.cluster_id == near.cluster_id == first.pk
    assert Example.objects.filter(project=project, format_ok=False).count() == 1
    assert sum(scan.stats["histogram"]["assistant"]) == 62 and scan.stats["too_long"] == 0
    clusters = selectors.duplicate_cluster_list(project=project)
    assert [c["cluster_id"] for c in clusters] == [first.pk]
    assert scan.stats["estimate"] == services.ESTIMATE_LABEL and scan.stats["exact"] is False


@pytest.mark.django_db
def test_a_tokenizer_that_does_not_load_falls_back_to_the_estimate_and_says_so(
    project, approved, client, lead, settings, tmp_path
):
    settings.FINELINE_MODELS_DIR = str(tmp_path)  # a folder may be named there (and only there)
    (tmp_path / "empty").mkdir()
    client.force_login(lead)
    client.post(f"/projects/{project.slug}/settings/", {"tokenizer": str(tmp_path / "empty")})
    project.refresh_from_db()
    scan = QualityScan.objects.get(project=project, status="queued")
    assert project.tokenizer == str(tmp_path / "empty")
    scan = services.quality_scan_run(scan=scan)
    assert scan.status == "succeeded" and sum(scan.stats["histogram"]["assistant"]) == 62
    # the folder named relative to the models folder, as everywhere on the pages
    assert scan.stats["estimate"].endswith("exactly (the tokenizer $FINELINE_MODELS_DIR/empty did not load)")
    page = client.get(f"/projects/{project.slug}/").content.decode()
    assert "the tokenizer $FINELINE_MODELS_DIR/empty did not load" in page
    assert 'value="$FINELINE_MODELS_DIR/empty"' in page and str(tmp_path) not in page


@pytest.mark.django_db
def test_a_frozen_version_is_stratified_immutable_and_leak_free(project, approved, lead, expert):
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    version = services.dataset_version_freeze(project=project, user=lead, seed=7)
    items = DatasetVersionItem.objects.filter(version=version)
    assert items.count() == 62 and version.number == 1 and len(version.content_hash) == 64
    splits = dict(items.values_list("example_id", "split"))
    assert splits[approved[0].pk] == splits[approved[60].pk]  # the cluster stays together
    assert version.counts["train"]["total"] + version.counts["val"]["total"] + version.counts["test"]["total"] == 62
    assert version.counts["train"]["labels"]["P4"] > version.counts["train"]["labels"]["P1"]
    # The same data and seed freeze the same split.
    again = services.dataset_version_freeze(project=project, user=lead, seed=7)
    assert (again.number, again.content_hash) == (2, version.content_hash)
    # Editing an example later does not change what was frozen.
    example = approved[1]
    messages = [dict(m) for m in example.messages]
    messages[-1]["content"] = "SEVERITY: P2\nIMPACT: changed later\nACTION: act"
    services.example_update(example=example, user=expert, version=1, changes={"messages": messages})
    frozen = DatasetVersionItem.objects.get(version=version, example_id=example.pk)
    assert "changed later" not in frozen.messages[-1]["content"]
    verdict = {c["id"]: c["passed"] for c in selectors.readiness(project=project)["checks"]}
    assert verdict["no_leakage"] and verdict["split_frozen"] and verdict["all_reviewed"]


@pytest.mark.django_db
def test_balancing_caps_labels_deterministically(project, approved, lead):
    version = services.dataset_version_freeze(project=project, user=lead, max_per_label=10, seed=1)
    totals = Counter()
    for split in version.counts.values():
        totals.update(split["labels"])
    assert totals == {"P1": 10, "P2": 10, "P3": 10, "P4": 10}
    assert services.dataset_version_freeze(project=project, user=lead, max_per_label=10, seed=1).content_hash == (
        version.content_hash
    )


@pytest.mark.django_db
def test_freeze_refuses_bad_shares(project, approved, lead):
    for shares in ({"train": 0.5, "val": 0.1, "test": 0.1}, {"train": 0, "val": 0.5, "test": 0.5}):
        with pytest.raises(services.ServiceError):
            services.dataset_version_freeze(project=project, user=lead, **shares)


@pytest.mark.django_db
def test_dataset_versions_over_the_api(project, approved, lead_api, expert_api):
    url = f"/api/v1/projects/{project.slug}/dataset-versions/"
    assert expert_api.post(url, {"seed": 1}, format="json").status_code == 403
    response = lead_api.post(url, {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1}, format="json")
    assert response.status_code == 201, response.json()
    version = response.json()
    assert [v["id"] for v in expert_api.get(url).json()] == [version["id"]]
    lines = []
    for split in ("train", "val", "test"):
        exported = lead_api.get(f"{url}{version['id']}/export/?split={split}")
        assert exported.status_code == 200
        lines += [orjson.loads(line) for line in b"".join(exported.streaming_content).splitlines()]
    assert len(lines) == 62 and all("messages" in line for line in lines)
    assert lead_api.get(f"{url}{version['id']}/export/?split=holdout").status_code == 400
    assert lead_api.post(url, {"train": 0.9, "val": 0.5, "test": 0.1}, format="json").status_code == 400


@pytest.mark.django_db
def test_readiness_and_stats_over_the_api(project, approved, lead_api, outsider_api):
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    body = lead_api.get(f"/api/v1/projects/{project.slug}/readiness/").json()
    checks = {c["id"]: c for c in body["checks"]}
    assert set(checks) >= {
        "min_examples",
        "all_reviewed",
        "label_balance",
        "edge_cases",
        "duplicates",
        "no_leakage",
        "format_conformance",
        "split_frozen",
    }
    assert body["ready"] is False and checks["min_examples"]["passed"] is False
    assert checks["duplicates"]["passed"] is False and "1 clusters" in checks["duplicates"]["detail"]
    stats = lead_api.get(f"/api/v1/projects/{project.slug}/stats/").json()
    assert stats["approved_by_label"] == {"P1": 11, "P2": 11, "P3": 10, "P4": 30}  # counted by hand from the fixture
    assert stats["deficits"] == {}
    assert stats["scan"]["clusters"] == 1
    assert outsider_api.get(f"/api/v1/projects/{project.slug}/readiness/").status_code == 404


@pytest.mark.django_db
def test_resolving_a_cluster_keeps_one_and_rejects_the_rest(project, approved, lead_api, expert_api):
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    cluster = approved[0].pk
    url = f"/api/v1/projects/{project.slug}/duplicates/{cluster}/resolve/"
    assert expert_api.post(url, {"keep": approved[60].pk}, format="json").status_code == 403
    assert lead_api.post(url, {"keep": approved[60].pk}, format="json").json() == {"rejected": 1}
    assert Example.objects.get(pk=approved[0].pk).status == "rejected"
    assert selectors.duplicate_cluster_list(project=project) == []


@pytest.mark.django_db
def test_scan_threshold_format_filter_and_label_queue(project, approved, lead_api, expert):
    response = lead_api.post(f"/api/v1/projects/{project.slug}/quality-scans/", {"threshold": 0.95}, format="json")
    assert response.status_code == 202 and response.json()["threshold"] == 0.95
    assert (
        lead_api.post(f"/api/v1/projects/{project.slug}/quality-scans/", {"threshold": 0.2}, format="json").status_code
        == 400
    )
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    bad = selectors.example_list(project=project, format="bad")
    assert [e.messages[-1]["content"] for e in bad] == ["just words"]
    Example.objects.filter(project=project).update(status="pending")
    claimed = services.review_queue_next(project=project, reviewer=expert, label="P3")
    assert claimed.label == "P3"


@pytest.mark.django_db
def test_readiness_notices_an_example_unapproved_after_the_freeze(project, approved, lead):
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    services.dataset_version_freeze(project=project, user=lead)
    checks = {c["id"]: c for c in selectors.readiness(project=project)["checks"]}
    assert checks["all_reviewed"]["passed"] and checks["split_frozen"]["passed"]
    example = Example.objects.get(pk=approved[3].pk)
    services.example_update(example=example, user=lead, version=example.version, changes={"status": "rejected"})
    checks = {c["id"]: c for c in selectors.readiness(project=project)["checks"]}
    assert (
        checks["all_reviewed"]["passed"] is False
        and "1 examples are no longer approved" in checks["all_reviewed"]["detail"]
    )


@pytest.mark.django_db
def test_a_version_exports_as_a_hugging_face_datasets_folder(project, approved, lead, lead_api, tmp_path):
    import io
    import zipfile

    import datasets
    from django.core.management import call_command

    version = services.dataset_version_freeze(project=project, user=lead, seed=3)
    call_command("export_version", project.slug, "1", str(tmp_path / "hf"), "--hf", stdout=io.StringIO())
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert {split: len(loaded[split]) for split in loaded} == {
        split: version.counts[split]["total"] for split in ("train", "val", "test")
    }
    assert loaded["train"][0]["messages"][0]["role"] == "system"
    response = lead_api.get(f"/api/v1/projects/{project.slug}/dataset-versions/{version.pk}/export/?format=hf")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as bundle:
        assert "triage-v1/dataset_dict.json" in bundle.namelist()
    call_command("export_version", project.slug, "1", str(tmp_path / "jsonl"), stdout=io.StringIO())
    assert (
        sum(len((tmp_path / "jsonl" / f"{s}.jsonl").read_bytes().splitlines()) for s in ("train", "val", "test")) == 62
    )


@pytest.mark.django_db
def test_the_database_refuses_to_change_a_frozen_version(project, approved, lead):
    from django.db import DatabaseError, transaction

    version = services.dataset_version_freeze(project=project, user=lead)
    item = DatasetVersionItem.objects.filter(version=version).first()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        DatasetVersionItem.objects.filter(pk=item.pk).update(label="P1" if item.label != "P1" else "P2")
    Example.objects.filter(pk=item.example_id).delete()  # deleting the example keeps the frozen copy
    item.refresh_from_db()
    assert item.example_id is None and item.messages


@pytest.mark.django_db
def test_a_scan_after_the_freeze_finds_a_cluster_across_splits(project, approved, lead):
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    version = services.dataset_version_freeze(project=project, user=lead, seed=11)
    splits = dict(DatasetVersionItem.objects.filter(version=version).values_list("example_id", "split"))
    train = next(e for e in approved if splits.get(e.pk) == "train")
    test = next(e for e in approved if splits.get(e.pk) == "test")
    test = Example.objects.get(pk=test.pk)
    messages = [dict(m) for m in train.messages]
    messages[-1]["content"] += " "  # the same ticket and answer (but for a space), now in train and in test
    services.example_update(example=test, user=lead, version=test.version, changes={"messages": messages})
    checks = {c["id"]: c for c in selectors.readiness(project=project)["checks"]}
    assert checks["no_leakage"]["passed"]  # not seen until the next scan
    services.quality_scan_run(scan=services.quality_scan_start(project=project))
    checks = {c["id"]: c for c in selectors.readiness(project=project)["checks"]}
    assert checks["no_leakage"]["passed"] is False and "cross splits" in checks["no_leakage"]["detail"]


@pytest.mark.django_db
def test_examples_over_the_max_length_are_counted_and_listed(project, lead_api):
    project.max_seq_length = 50
    project.save()
    post_jsonl(lead_api, project.slug, jsonl([chat("short"), chat("long " * 100)]))
    scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
    assert scan.stats["too_long"] == 1
    listed = selectors.example_list(project=project, too_long=True)
    assert [e.messages[1]["content"] for e in listed] == ["long " * 100]


@pytest.mark.django_db
def test_the_dashboards_over_length_link_lists_what_the_scan_counted(project, lead_api):
    """One count everywhere: the list behind "N example(s) over M tokens" is the scan's N, not a byte estimate."""
    project.max_seq_length = 100
    project.save()
    # A 150-character run counts about 116 tokens, but its 330 bytes of JSON / 4 say 82: a byte estimate leaves it out.
    texts = [" ".join(["word"] * n) for n in (10, 120)] + ["x" * 150]
    post_jsonl(lead_api, project.slug, jsonl([chat(text) for text in texts]))
    scan = services.quality_scan_run(scan=services.quality_scan_start(project=project))
    counted = sorted(example_id for example_id, tokens in scan.stats["longest"] if tokens > 100)
    listed = sorted(selectors.example_list(project=project, too_long=True).values_list("pk", flat=True))
    assert listed == counted and len(listed) == scan.stats["too_long"] == 2


@pytest.mark.django_db
def test_the_advice_says_so_when_the_base_model_is_already_good_enough(project, approved):
    assert not any("not worth it" in advice for advice in selectors.readiness(project=project)["advice"])
    services.project_update(project=project, baseline_score=0.93)
    advice = selectors.readiness(project=project)["advice"]
    assert "The base model already reaches 93% on the primary metrics: fine-tuning is probably not worth it." in advice


# --- Checks that cannot be measured yet ------------------------------------------------------------------------


def test_label_balance_with_nothing_approved_is_unmeasured_not_passed():
    eight = [f"L{i}" for i in range(8)]
    verdict = quality.readiness(stats(approved=0, labels=eight, label_counts={}, edge_cases=0, format_checked=0))
    balance = {c["id"]: c for c in verdict["checks"]}["label_balance"]
    assert (balance["passed"], balance["status"]) == (False, "unmeasured")
    assert "cannot be measured" in balance["detail"] and "8 labels" in balance["detail"]
    assert verdict["ready"] is False
    assert {c["id"]: c["status"] for c in quality.readiness(stats())["checks"]}["label_balance"] == "passed"


def test_a_label_nobody_has_approved_counts_as_zero():
    verdict = quality.readiness(stats(labels=["P1", "P2", "P3", "P4"], label_counts={"P1": 600, "P2": 600}))
    balance = {c["id"]: c for c in verdict["checks"]}["label_balance"]
    assert (balance["passed"], balance["status"]) == (False, "failed")
    assert "nothing approved as P3, P4" in balance["detail"]
    assert "P3: 200 more approved examples needed" in balance["detail"]


def test_the_advice_on_size_is_a_sentence():
    advice = quality.readiness(stats(approved=640))["advice"]
    assert advice[0].startswith("Aim for 1,000-5,000 approved examples, the ideal range (640 now): more reviewed")
    assert not any("Aim for 1,000-5,000 is" in line for line in advice)


@pytest.mark.django_db
def test_the_dashboard_shows_a_check_it_cannot_measure_yet(project, lead, lead_api, client):
    services.project_update(project=project, labels=[f"L{i}" for i in range(8)])
    post_jsonl(lead_api, project.slug, jsonl([chat("nothing approved yet")]))
    checks = {c["id"]: c for c in lead_api.get(f"/api/v1/projects/{project.slug}/readiness/").json()["checks"]}
    assert (checks["label_balance"]["passed"], checks["label_balance"]["status"]) == (False, "unmeasured")
    assert checks["duplicates"]["status"] == "unmeasured"  # no scan yet
    for unknown in ("edge_cases", "format_conformance", "all_reviewed", "no_leakage"):  # nothing approved or frozen
        assert (checks[unknown]["passed"], checks[unknown]["status"]) == (False, "unmeasured"), unknown
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/").content.decode()
    row = page[page.index('data-check="label_balance"') :].split("</tr>")[0]
    assert 'data-status="unmeasured"' in row and "Not measurable yet." in row and "✓" not in row
