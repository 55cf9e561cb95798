"""Repository names as GitHub has them (issue 11): case-insensitive names and former names (renamed,
transferred) in flowlens.toml, partition keys and stored cursors; every record says GitHub's full_name."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from connectors.github import GitHubSettings, connect
from connectors.http import HttpSettings, NotFoundError
from landing_format import partition_dir

FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, connect_timeout_s=2, read_timeout_s=20)
SPELLED = {"Acme/Payments-API": "acme/payments-api", "ACME/web-store": "acme/web-store",
           "acme/payments": "acme/payments-api",  # renamed
           "acme/ml-lab": "acme-labs/ml-lab"}  # transferred to the other organisation


@pytest.fixture(scope="module")
def sb():
    from sandbox import generator
    from sandbox.server import Sandbox

    with Sandbox(generator.generate("small", 1), port=0) as s:
        yield s


def records(root: Path, stream: str, partition: str = "*") -> list[dict]:
    return [json.loads(line) for f in sorted(root.glob(f"github/{partition}/*/{stream}-*.jsonl"))
            for line in f.read_text().splitlines()]


def truth(store, repo: str) -> tuple[set, Counter]:
    items = [i for i in store.github_pulls + store.github_issues if i.repo == repo]
    pulls = {(p.repo, p.number) for p in store.github_pulls if p.repo == repo}
    reviews = Counter((i.repo, i.number) for i in items for e in i.events if e.event == "reviewed")
    return pulls, reviews


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_configured_spellings_resolve_to_githubs_full_name_everywhere(sb, tmp_path, api):
    src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, repositories=list(SPELLED)))
    found = src.discover_repositories()
    assert found == sorted(set(SPELLED.values()))  # one partition per repository, in GitHub's spelling
    assert any("acme/payments is now acme/payments-api" in n for n in src.notes)
    assert any("acme/ml-lab is now acme-labs/ml-lab" in n for n in src.notes)
    results = src.extract_repositories(tmp_path, {r: None for r in found}, parallel=3)
    for repo in found:
        assert not isinstance(results[repo], Exception), results[repo]
        pulls = {(p["base"]["repo"]["full_name"], p["number"]) for p in records(tmp_path, "pull_requests",
                                                                                 partition_dir(repo))}
        events = records(tmp_path, "timeline_events", partition_dir(repo))
        reviews = Counter((e["repository"], e["issue_number"]) for e in events if e["event"]["event"] == "reviewed")
        want_pulls, want_reviews = truth(sb.app.store, repo)
        assert pulls == want_pulls and reviews == want_reviews, repo
        assert {e["repository"] for e in events} == {repo}  # the key the warehouse joins on: item_id
        assert {r["full_name"] for r in records(tmp_path, "repositories", partition_dir(repo))} == {repo}


@pytest.mark.parametrize("api", ["graphql", "rest"])
@pytest.mark.parametrize("key", ["Acme/Payments-API", "acme/payments"])
def test_a_partition_keyed_by_another_spelling_still_lands_githubs_names(sb, tmp_path, api, key):
    """Partition keys and cursors of an existing warehouse may use the configured spelling."""
    src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST))
    result = src.extract_repository(tmp_path, key, None)
    assert result.full_name == "acme/payments-api" and result.repository == key
    manifest = json.loads(result.manifest.read_text())
    assert manifest["partition"] == key and manifest["full_name"] == "acme/payments-api"
    events = records(tmp_path, "timeline_events")
    assert events and {e["repository"] for e in events} == {"acme/payments-api"}
    assert {p["url"].split("/repos/")[1].split("/pulls/")[0] for p in records(tmp_path, "pull_requests")} == \
        {"acme/payments-api"}


def test_multi_repository_searches_use_githubs_names_for_partitions_keyed_otherwise(sb, tmp_path):
    src = connect(GitHubSettings.from_env(sb.env(), http=FAST))
    full = src.extract_repositories(tmp_path / "full", {"acme/payments-api": None, "acme-labs/ml-lab": None})
    sb.app.advance(0.05)
    cursors = {"Acme/Payments-API": full["acme/payments-api"].cursor, "acme/ml-lab": full["acme-labs/ml-lab"].cursor}
    sb.app.reset_stats()
    src = connect(GitHubSettings.from_env(sb.env(), http=FAST))
    inc = src.extract_repositories(tmp_path / "inc", cursors)
    assert sb.app.stats.requests.get("github.graphql", 0) <= 3  # names resolved, then one search for all
    changes = 0
    for key, name in (("Acme/Payments-API", "acme/payments-api"), ("acme/ml-lab", "acme-labs/ml-lab")):
        assert not isinstance(inc[key], Exception), inc[key]
        assert inc[key].full_name == name
        landed = records(tmp_path / "inc", "pull_requests", partition_dir(key))
        since = cursors[key]["updated"]
        changed = {p.number for p in sb.app.store.github_pulls if p.repo == name
                   and p.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ") > since}
        assert changed <= {p["number"] for p in landed}
        changes += len(changed)
        assert {e["repository"] for e in records(tmp_path / "inc", "timeline_events", partition_dir(key))} <= {name}
    assert changes > 0


def test_an_unknown_configured_repository_fails_discovery_naming_it(sb):
    src = connect(GitHubSettings.from_env(sb.env(), http=FAST, repositories=["acme/nope", "Acme/Payments-API"]))
    with pytest.raises(NotFoundError, match=r"^GitHub: repository acme/nope not found.*sources.github.repositories"):
        src.discover_repositories()


def test_a_warehouse_keyed_by_the_configured_spelling_is_repaired_by_the_next_run(sb, tmp_path):
    """Today's bug, landed: pull requests under the API's name, their events under the configured spelling,
    the cursor under the configured spelling. The next run's partition is GitHub's name, so it starts without
    a cursor, re-lands everything under that name, and the warehouse has every review again."""
    from pipelines.config import load_config
    from pipelines.warehouse import load, read_cursors, run_models
    from sandbox.gen_config import config_toml

    store = sb.app.store
    key, name = "Acme/Payments-API", "acme/payments-api"
    root, db = tmp_path / "landing", tmp_path / "w.duckdb"
    src = connect(GitHubSettings.from_env(sb.env(), http=FAST))
    old = src.extract_repository(root, key, None)
    for f in root.glob("github/*/*/timeline_events-*.jsonl"):  # what the old connector wrote
        f.write_text("".join(json.dumps({**json.loads(line), "repository": key}) + "\n"
                             for line in f.read_text().splitlines()))
    (tmp_path / "flowlens.toml").write_text(config_toml(store))
    cfg = load_config(tmp_path / "flowlens.toml")
    load(db, root)
    run_models(db, cfg, store.now)

    def reviews_seen() -> int:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("select count(*) from core.github_events where item_id like 'github:acme/payments-api#%'"
                               " and event = 'reviewed'").fetchone()[0]

    want = sum(e.event == "reviewed" for p in store.github_pulls if p.repo == name for e in p.events)
    assert want > 0 and reviews_seen() == 0  # every review lost, as in the issue
    assert read_cursors(db)[("github", key)] == old.cursor
    new = connect(GitHubSettings.from_env(sb.env(), http=FAST))
    partitions = new.discover_repositories()
    assert name in partitions and key not in partitions
    cursor = read_cursors(db).get(("github", name))
    assert cursor is None  # a full extract under GitHub's name
    new.extract_repository(root, name, cursor)
    load(db, root)
    run_models(db, cfg, store.now)
    assert reviews_seen() == want
