"""The diff of two dataset versions: counts and lists on hand-built versions with known answers, an example deleted
since the freeze matched by its content hash, who may read it over the API and in the browser, bad `against`."""

import pytest

from curation import formats, selectors, services
from curation.models import DatasetVersion, DatasetVersionItem, Example

from ..helpers import chat

pytestmark = pytest.mark.django_db


def _example(project, name: str, label: str, answer: str = "SEVERITY: P4\nIMPACT: none\nACTION: reply") -> Example:
    messages = chat(name, answer)["messages"]
    content = formats.content_hash(formats.messages_dump(messages))
    return Example.objects.create(project=project, messages=messages, label=label, content_hash=content)


def _freeze(project, number: int, items: list[tuple]) -> DatasetVersion:
    """A version holding (example, split, label, messages or None for the example's own) as given."""
    version = DatasetVersion.objects.create(
        project=project, number=number, train_share=0.8, val_share=0.1, test_share=0.1, counts={}, content_hash=""
    )
    for example, split, label, messages in items:
        messages = messages or example.messages
        DatasetVersionItem.objects.create(
            version=version,
            example=example,
            split=split,
            label=label,
            messages=messages,
            content_hash=formats.content_hash(formats.messages_dump(messages)),
        )
    return version


@pytest.fixture
def two_versions(project):
    """v1 -> v2: e1 unchanged, e2 edited (its answer), e3 relabelled P3 -> P1 and moved val -> test, e4 removed,
    e5 moved train -> val, e6 deleted since but in both (matched by hash), e7 added, e8 deleted since, in v1 alone."""
    e = {n: _example(project, f"ticket {n}", "P4") for n in range(1, 9)}
    edited = chat("ticket 2", "SEVERITY: P2\nIMPACT: a team\nACTION: escalate")["messages"]
    v1 = _freeze(
        project,
        1,
        [
            (e[1], "train", "P1", None),
            (e[2], "train", "P2", None),
            (e[3], "val", "P3", None),
            (e[4], "test", "P4", None),
            (e[5], "train", "P4", None),
            (e[6], "train", "P2", None),
            (e[8], "test", "P3", None),
        ],
    )
    v2 = _freeze(
        project,
        2,
        [
            (e[1], "train", "P1", None),
            (e[2], "train", "P2", edited),
            (e[3], "test", "P1", None),
            (e[5], "val", "P4", None),
            (e[6], "train", "P2", None),
            (e[7], "train", "P1", None),
        ],
    )
    Example.objects.filter(pk__in=[e[6].pk, e[8].pk]).delete()  # the items keep their content, example NULL
    return v1, v2, e


def test_the_diff_counts_and_lists_each_kind_of_change(two_versions):
    v1, v2, e = two_versions
    diff = selectors.dataset_version_diff(version=v2, against=v1)
    assert (diff["version"]["number"], diff["against"]["number"]) == (2, 1)
    assert diff["totals"] == {
        "before": 7,
        "after": 6,
        "added": 1,
        "removed": 2,
        "edited": 1,
        "relabelled": 1,
        "moved": 2,
        "unchanged": 2,
        "matched_by_content_hash": 1,
    }
    assert diff["labels"] == [
        {"label": "P1", "before": 1, "after": 3, "change": 2},
        {"label": "P2", "before": 2, "after": 2, "change": 0},
        {"label": "P3", "before": 2, "after": 0, "change": -2},
        {"label": "P4", "before": 2, "after": 1, "change": -1},
    ]
    assert diff["splits"] == [
        {"split": "train", "before": 4, "after": 4},
        {"split": "val", "before": 1, "after": 1},
        {"split": "test", "before": 2, "after": 1},
    ]
    assert diff["relabels"] == [{"before": "P3", "after": "P1", "count": 1}]
    assert diff["moves"] == [
        {"before": "train", "after": "val", "count": 1},
        {"before": "val", "after": "test", "count": 1},
    ]
    lists = diff["lists"]
    assert [x["example"] for x in lists["added"]] == [e[7].pk]
    assert lists["added"][0]["before"] is None and lists["added"][0]["after"]["label"] == "P1"
    assert lists["added"][0]["excerpt"] == "ticket 7"
    # Removed: e4, then the deleted e8 (no example any more), found by its content.
    assert [x["example"] for x in lists["removed"]] == [e[4].pk, None]
    assert lists["removed"][1]["before"]["content_hash"] == e[8].content_hash
    assert lists["removed"][1]["excerpt"] == "ticket 8"
    [edit] = lists["edited"]
    assert edit["example"] == e[2].pk and edit["matched_by"] == "example"
    assert edit["before"]["content_hash"] != edit["after"]["content_hash"]
    [turn] = edit["turns"]
    assert turn["role"] == "assistant"
    assert {"mark": "-", "text": "SEVERITY: P4"} in turn["lines"] and {"mark": "+", "text": "SEVERITY: P2"} in turn[
        "lines"
    ]
    [relabel] = lists["relabelled"]
    assert (relabel["example"], relabel["before"]["label"], relabel["after"]["label"]) == (e[3].pk, "P3", "P1")
    assert relabel["turns"] == []
    assert [(x["example"], x["before"]["split"], x["after"]["split"]) for x in lists["moved"]] == [
        (e[3].pk, "val", "test"),
        (e[5].pk, "train", "val"),
    ]


def test_a_deleted_example_is_matched_by_its_content_hash(two_versions, project):
    v1, v2, e = two_versions
    assert not DatasetVersionItem.objects.filter(version__in=[v1, v2], content_hash=e[6].content_hash).exclude(
        example=None
    )
    diff = selectors.dataset_version_diff(version=v2, against=v1, kind="moved")
    assert diff["totals"]["matched_by_content_hash"] == 1 and diff["totals"]["unchanged"] == 2
    assert list(diff["lists"]) == ["moved"]
    # A deleted example that changes split shows as moved, matched by content.
    e9 = _example(project, "ticket 9", "P2")
    v3 = _freeze(project, 3, [(e9, "train", "P2", None)])
    v4 = _freeze(project, 4, [(e9, "test", "P2", None)])
    e9.delete()
    moved = selectors.dataset_version_diff(version=v4, against=v3)
    [entry] = moved["lists"]["moved"]
    assert entry["example"] is None and entry["matched_by"] == "content_hash"
    assert moved["totals"]["moved"] == moved["totals"]["matched_by_content_hash"] == 1


def test_the_reverse_diff_swaps_added_and_removed_and_a_version_against_itself_is_unchanged(two_versions):
    v1, v2, _ = two_versions
    back = selectors.dataset_version_diff(version=v1, against=v2)
    assert (back["totals"]["added"], back["totals"]["removed"]) == (2, 1)
    assert back["relabels"] == [{"before": "P1", "after": "P3", "count": 1}]
    same = selectors.dataset_version_diff(version=v2, against=v2)
    assert same["totals"]["unchanged"] == 6 and not any(same["lists"].values())


def test_the_lists_are_paged_and_the_totals_count_all(two_versions):
    v1, v2, e = two_versions
    page = selectors.dataset_version_diff(version=v2, against=v1, offset=1, limit=1)
    assert [x["example"] for x in page["lists"]["removed"]] == [None]
    assert [x["example"] for x in page["lists"]["moved"]] == [e[5].pk]
    assert page["lists"]["added"] == [] and page["totals"]["removed"] == 2


def test_the_diff_over_the_api_and_who_may_read_it(
    two_versions, project, lead, lead_api, expert_api, outsider_api, make_user
):
    v1, v2, e = two_versions
    url = f"/api/v1/projects/{project.slug}/dataset-versions/{v2.pk}/diff/"
    for client in (lead_api, expert_api):  # members read versions; only leads freeze them
        response = client.get(f"{url}?against={v1.pk}")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["totals"]["edited"] == 1 and body["lists"]["edited"][0]["turns"][0]["role"] == "assistant"
        assert body["lists"]["removed"][1] == {
            "example": None,
            "matched_by": None,
            "before": {"item": body["lists"]["removed"][1]["before"]["item"], "split": "test", "label": "P3",
                       "content_hash": e[8].content_hash},
            "after": None,
            "excerpt": "ticket 8",
            "turns": [],
        }  # fmt: skip
    assert outsider_api.get(f"{url}?against={v1.pk}").status_code == 404
    one = lead_api.get(f"{url}?against={v1.pk}&kind=relabelled&limit=1").json()
    assert list(one["lists"]) == ["relabelled"] and one["limit"] == 1
    # Bad or missing `against`, kind or limit: 400, naming the parameter.
    for query in ("", "?against=", "?against=abc", "?against=-1", f"?against={v2.pk + 1000}"):
        response = lead_api.get(url + query)
        assert response.status_code == 400 and "against" in response.json(), query
    assert lead_api.get(f"{url}?against={v1.pk}&kind=everything").status_code == 400
    assert lead_api.get(f"{url}?against={v1.pk}&limit=0").status_code == 400
    # Another project's version: 404 in the path, 400 as `against`.
    other = services.project_create(creator=lead, name="Other", slug="other", labels=["P1"])
    theirs = _freeze(other, 1, [(_example(other, "elsewhere", "P1"), "train", "P1", None)])
    assert (
        lead_api.get(f"/api/v1/projects/{project.slug}/dataset-versions/{theirs.pk}/diff/?against={v1.pk}").status_code
        == 404
    )  # noqa: E501
    assert lead_api.get(f"{url}?against={theirs.pk}").status_code == 400


def test_the_diff_page_compares_with_the_version_before_and_swaps_on_another_choice(
    two_versions, project, client, lead, expert, outsider
):
    v1, v2, e = two_versions
    url = f"/projects/{project.slug}/versions/{v2.pk}/diff/"
    client.force_login(expert)
    page = client.get(url).content.decode()  # no `against`: the version before
    assert "<h1>Dataset version v2: what changed</h1>" in page and "<h2>Against v1</h2>" in page
    assert page.index("<h1>") < page.index("<h2>") < page.index("<h3>")
    assert '<label>Compare with <select name="against">' in page
    assert f'<option value="{v1.pk}" selected>v1' in page
    assert '<strong data-count="added">1</strong> added' in page and '<strong data-count="moved">2</strong>' in page
    assert "1 example deleted since was matched by content" in page
    assert '<tr data-label="P3"><th scope="row">P3</th><td class="num">2</td><td class="num">0</td>' in page
    assert "P3 → P1: 1" in page and "val → test: 1" in page
    edited = page.split('data-diff-kind="edited"', 1)[1].split("</section>", 1)[0]
    assert f'href="/projects/{project.slug}/examples/{e[2].pk}/history/"' in edited
    assert '<span class="ddel">- SEVERITY: P4</span>' in edited and '<span class="dadd">+ SEVERITY: P2</span>' in edited
    removed = page.split('data-diff-kind="removed"', 1)[1].split("</section>", 1)[0]
    assert "deleted</span>" in removed and "ticket 8" in removed
    # Another version chosen: htmx asks for the diff alone.
    fragment = client.get(f"{url}?against={v2.pk}", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "<h2>Against v2</h2>" in fragment
    assert '<strong data-count="edited">0</strong>' in fragment
    # A page of one kind; a bad `against` says so.
    one = client.get(f"{url}?against={v1.pk}&kind=moved&offset=1").content.decode()
    assert 'data-diff-kind="moved"' in one and 'data-diff-kind="added"' not in one and "Every kind of change" in one
    bad = client.get(f"{url}?against=nope")
    assert bad.status_code == 400 and "Choose another version of this project" in bad.content.decode()
    first = client.get(f"/projects/{project.slug}/versions/{v1.pk}/diff/").content.decode()
    assert "v1 is the project's first version" in first
    client.force_login(lead)
    dashboard = client.get(f"/projects/{project.slug}/").content.decode()
    assert f'href="/projects/{project.slug}/versions/{v2.pk}/diff/" data-version-diff="2"' in dashboard
    client.force_login(outsider)
    assert client.get(url).status_code == 404
