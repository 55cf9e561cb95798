"""The load (landing pages -> raw.*, cursors) and the model runner."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from landing_format import Landing
from pipelines import warehouse
from pipelines.config import Config
from pipelines.warehouse import WarehouseError, load, models, read_cursors, run_models
from tests.test_warehouse_rules import MON, Org, mixed_org

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github-recorded"
RAW_TABLES = ("jira__issues", "jira__changelogs", "jira__statuses", "github__pull_requests",
              "github__timeline_events")


def snapshot(db: Path) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        out = {t: con.execute(f"select * from raw.{t} order by all").fetchall() for t in RAW_TABLES}
        out["cursors"] = con.execute("select source, partition, cursor::varchar from raw.cursors order by all").fetchall()
        out["files"] = con.execute("select path from raw.loaded_files order by all").fetchall()
    return out


def test_loading_the_same_pages_twice_changes_nothing(tmp_path: Path) -> None:
    org = Org(tmp_path / "landing")
    mixed_org(org)
    org.land()
    db = tmp_path / "w.duckdb"
    first = load(db, org.root)
    assert first.rows["jira__issues"] == 6 and first.rows["github__pull_requests"] == 6
    before = snapshot(db)
    second = load(db, org.root)
    assert second.pages == 0 and second.rows == {}
    # the same records fetched again by a later extract are deduplicated by (id, updated): the newer fetch
    # takes the place of the older one
    org.land(extract="20240102T000000000000Z-bbbbbbbb")
    third = load(db, org.root)
    assert third.pages > 0 and set(third.rows.values()) == {0}
    after = snapshot(db)

    def content(snap: dict) -> dict:  # (id, updated, partition, payload): all but extract_id and loaded_at
        return {k: sorted((r[0], r[1], r[2], r[5]) for r in v) for k, v in snap.items() if k in RAW_TABLES}
    assert content(after) == content(before)
    assert {r[3] for t in RAW_TABLES for r in after[t]} == {"20240102T000000000000Z-bbbbbbbb"}


def test_a_failed_load_leaves_the_warehouse_unchanged(tmp_path: Path) -> None:
    org = Org(tmp_path / "landing")
    mixed_org(org)
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    before = snapshot(db)
    # a second extract: one good page, one corrupt page, and a complete manifest with a new cursor
    later = Landing(org.root, "jira", "PAY", extract_id="20240301T000000000000Z-cccccccc")
    issue = json.loads(json.dumps(org.issues[0]))
    issue["fields"]["updated"] = "2024-03-20T10:00:00.000+0000"
    later.write_page("issues", [issue])
    bad = later.write_page("changelogs", [{"issueId": "1", "issueKey": "PAY-1", "changeHistories": []}])
    bad.write_text('{"issueId": "1", "issueKey": "PAY-1", "changeHis')
    later.finish({"updated": "2024-03-20"})
    with pytest.raises(WarehouseError, match="warehouse unchanged"):
        load(db, org.root)
    assert snapshot(db) == before
    assert read_cursors(db)[("jira", "PAY")] == {"updated": "2024-04-01"}
    # fixed: the same extract loads and advances the cursor
    bad.write_text(json.dumps({"issueId": "1", "issueKey": "PAY-1", "changeHistories": []}) + "\n")
    result = load(db, org.root)
    assert result.rows["jira__issues"] == 1
    assert read_cursors(db)[("jira", "PAY")] == {"updated": "2024-03-20"}


def test_an_injected_failure_after_some_streams_rolls_everything_back(tmp_path: Path) -> None:
    org = Org(tmp_path / "landing")
    mixed_org(org)
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root, fail_after_pages=10**6)  # creates the schema, loads everything
    before = snapshot(db)
    org.land(extract="20240105T000000000000Z-dddddddd", cursor={"updated": "2024-05-01"})
    for f in (org.root / "jira" / "PAY" / "20240105T000000000000Z-dddddddd").glob("issues-*.jsonl"):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        for r in recs:
            r["fields"]["updated"] = "2024-05-01T00:00:00.000+0000"
        f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    with pytest.raises(WarehouseError, match="injected"):
        load(db, org.root, fail_after_pages=3)
    assert snapshot(db) == before
    assert load(db, org.root).rows["jira__issues"] == 6


def test_cursors_advance_only_from_complete_manifests(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    db = tmp_path / "w.duckdb"
    assert read_cursors(db) == {}
    partial = Landing(root, "github", "acme/api", extract_id="20240101T000000000000Z-aaaaaaaa")
    partial.write_page("repositories", [{"id": 1, "full_name": "acme/api", "updated_at": "2024-01-01T00:00:00Z"}])
    result = load(db, root)
    assert result.rows == {"github__repositories": 1} and result.cursors_advanced == {}
    assert read_cursors(db) == {}
    partial.finish({"since": "2024-01-01T00:00:00Z"})
    result = load(db, root)
    assert result.pages == 0 and result.cursors_advanced == {("github", "acme/api"): {"since": "2024-01-01T00:00:00Z"}}
    older = Landing(root, "github", "acme/api", extract_id="20231201T000000000000Z-aaaaaaaa")
    older.finish({"since": "2023-12-01T00:00:00Z"})
    load(db, root)
    assert read_cursors(db) == {("github", "acme/api"): {"since": "2024-01-01T00:00:00Z"}}


def test_models_are_ordered_by_their_declared_dependencies() -> None:
    ms = models()
    names = [m.name for m in ms]
    position = {n: i for i, n in enumerate(names)}
    assert {"core.work_items", "core.status_intervals", "marts.item_flow", "marts.team_weekly"} <= set(names)
    for m in ms:
        assert m.depends_on, f"{m.path} declares no dependencies"
        for d in m.depends_on:
            if d.split(".")[0] in ("staging", "core", "marts"):
                assert position[d] < position[m.name], (m.name, d)
    text = "\n".join(m.path.read_text() for m in ms)
    assert "SELECT " not in text  # lowercase keywords


def test_recorded_github_pull_and_timeline(tmp_path: Path) -> None:
    pull = json.loads((FIXTURES / "pulls-freeCodeCamp-47550.json").read_text())
    timeline = json.loads((FIXTURES / "timeline-freeCodeCamp-47550.json").read_text())
    repo = pull["base"]["repo"]["full_name"]
    landing = Landing(tmp_path / "landing", "github", repo)
    landing.write_page("pull_requests", [pull])
    landing.write_page("timeline_events", [{"repository": repo, "issue_number": pull["number"], "event": e}
                                           for e in timeline])
    landing.finish({"since": pull["updated_at"]})
    db = tmp_path / "w.duckdb"
    result = load(db, tmp_path / "landing")
    assert result.rows["github__timeline_events"] == len(timeline)
    run_models(db, Config(), datetime(2023, 1, 1, tzinfo=UTC))
    with duckdb.connect(str(db), read_only=True) as con:
        reviews = con.execute("select count(*) from staging.stg_github__timeline_events "
                              "where event = 'reviewed' and event_at is not null").fetchone()[0]
        assert reviews == sum(1 for e in timeline if e["event"] == "reviewed")
        waits = con.execute("select count(*), count(*) filter (where is_open) from marts.approval_waits").fetchone()
        assert waits[0] == sum(1 for e in timeline if e["event"] == "review_requested") and waits[1] == 0
        assert con.execute("select current_state, kind from marts.item_flow").fetchall() == [("done", "pull_request")]
        # the recorded bot label neither starts nor ends anything; dismissals are reversals
        assert con.execute("select count(*) from marts.reversals where kind = 'approval_dismissed'").fetchone()[0] == 3


def test_a_failing_model_run_keeps_the_previous_marts(tmp_path: Path, monkeypatch) -> None:
    org = Org(tmp_path / "landing")
    org.issue("PAY-1", MON, [])
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    run_models(db, Config(), MON)
    with pytest.raises(WarehouseError, match="FLOWLENS_AS_OF"):
        run_models(db, Config(), "yesterday")
    broken = tmp_path / "sql"
    shutil.copytree(warehouse.SQL_DIR, broken)
    (broken / "marts" / "team_weekly.sql").write_text(  # parses, fails when run
        "-- depends_on: marts.item_flow\ncreate or replace table marts.team_weekly as\n"
        "select cast('not a number' as integer) as n from marts.item_flow")
    (broken / "marts" / "item_flow.sql").write_text(
        (broken / "marts" / "item_flow.sql").read_text().replace("order by item_id\n;", "limit 0\n;"))
    monkeypatch.setattr(warehouse, "SQL_DIR", broken)
    with pytest.raises(WarehouseError, match="marts.team_weekly"):
        run_models(db, Config(), MON)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from marts.item_flow").fetchone() == (1,)


def test_issues_missing_from_the_latest_reconcile_are_dropped(tmp_path: Path) -> None:
    org = Org(tmp_path / "landing")
    org.issue("PAY-1", MON, [])
    org.issue("PAY-2", MON, [])
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    run_models(db, Config(), MON)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from marts.item_flow").fetchone() == (2,)
    old = Landing(org.root, "jira", "PAY", extract_id="20240201T000000000000Z-aaaaaaaa")
    old.write_page("issue_ids", [{"id": "1", "key": "PAY-1"}, {"id": "2", "key": "PAY-2"}])
    old.finish({"updated": "2024-04-01"})
    new = Landing(org.root, "jira", "PAY", extract_id="20240202T000000000000Z-aaaaaaaa")
    new.write_page("issue_ids", [{"id": "1", "key": "PAY-1"}])  # PAY-2 was deleted or moved away
    new.finish({"updated": "2024-04-01"})
    load(db, org.root)
    run_models(db, Config(), MON)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select item_id from marts.item_flow").fetchall() == [("jira:PAY-1",)]


def test_a_timeline_event_fetched_again_with_a_new_payload_is_staged_once_as_last_fetched(tmp_path: Path) -> None:
    repo = "acme/web"

    def event(id_: int, state: str) -> dict:
        return {"repository": repo, "issue_number": 7,
                "event": {"id": id_, "event": "reviewed", "user": {"login": "bob"}, "state": state,
                          "submitted_at": "2024-03-04T10:00:00Z"}}

    for run, (state, other) in enumerate([("approved", 11), ("dismissed", 12)]):
        landing = Landing(tmp_path / f"landing{run}", "github", repo)
        landing.write_page("timeline_events", [event(10, state), event(other, "commented")])
        landing.finish({"since": "2024-03-05T00:00:00Z"})
        load(tmp_path / "w.duckdb", tmp_path / f"landing{run}")
    run_models(tmp_path / "w.duckdb", Config(), datetime(2024, 4, 1, tzinfo=UTC))
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.github__timeline_events").fetchone()[0] == 4
        assert con.execute("select event_id, review_state from staging.stg_github__timeline_events "
                           "order by event_id").fetchall() == [(10, "dismissed"), (11, "commented"), (12, "commented")]


def test_usable_cpus_respects_the_cgroup_cpu_quota(tmp_path: Path) -> None:
    """Under a container CPU limit (cgroup v2 cpu.max) DuckDB gets the quota's cores, not the node's."""
    cores = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs: 2 threads' worth of cores
    assert warehouse.usable_cpus(cpu_max) == min(cores, 2)
    cpu_max.write_text("50000 100000\n")
    assert warehouse.usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert warehouse.usable_cpus(cpu_max) == cores
    assert warehouse.usable_cpus(tmp_path / "absent") == cores


def _issue(key: str, status: str | None, updated: str = "2024-03-04T10:00:00.000+0000") -> dict:
    fields = {"summary": key, "issuetype": {"name": "Task"}, "project": {"key": "PAY"},
              "created": "2024-03-01T10:00:00.000+0000", "updated": updated}
    if status is not None:
        fields["status"] = {"name": status, "statusCategory": {"key": "indeterminate"}}
    return {"id": key.split("-")[1], "key": key, "fields": fields}


def _raw_issues(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select id, extract_id, payload->'fields'->'status'->>'name' from raw.jira__issues "
                           "order by all").fetchall()


def test_the_newest_fetch_of_a_version_wins_so_a_damaged_copy_is_repaired(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = Landing(tmp_path / "landing", "jira", "PAY", extract_id="20240101T000000000000Z-aaaaaaaa")
    first.write_page("issues", [_issue("PAY-1", None), _issue("PAY-2", "Done")])  # PAY-1 came damaged
    first.finish({"updated": "2024-03-04T10:00:00+00:00"})
    load(db, tmp_path / "landing")
    again = Landing(tmp_path / "landing", "jira", "PAY", extract_id="20240102T000000000000Z-bbbbbbbb")
    again.write_page("issues", [_issue("PAY-1", "In Progress")])  # the same version, fetched whole
    again.finish({"updated": "2024-03-04T10:00:00+00:00"})
    load(db, tmp_path / "landing")
    assert _raw_issues(db) == [("1", "20240102T000000000000Z-bbbbbbbb", "In Progress"),
                               ("2", "20240101T000000000000Z-aaaaaaaa", "Done")]
    # an older fetch landing late does not undo it
    late = Landing(tmp_path / "landing", "jira", "PAY", extract_id="20231231T000000000000Z-cccccccc")
    late.write_page("issues", [_issue("PAY-1", None)])
    late.finish({"updated": "2024-03-04T10:00:00+00:00"})
    load(db, tmp_path / "landing")
    assert _raw_issues(db)[0] == ("1", "20240102T000000000000Z-bbbbbbbb", "In Progress")


def test_a_full_refresh_replaces_what_was_loaded_for_each_partition_it_extracted(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = Landing(tmp_path / "landing", "jira", "PAY", extract_id="20240101T000000000000Z-aaaaaaaa")
    # PAY-9 damaged with a bogus, newer `updated`: only replacing the partition removes it
    first.write_page("issues", [_issue("PAY-1", "Done"), _issue("PAY-9", None, "2099-01-01T00:00:00.000+0000")])
    first.finish({"updated": "2024-03-04T10:00:00+00:00"})
    other = Landing(tmp_path / "landing", "jira", "OPS", extract_id="20240101T000000000000Z-aaaaaaaa")
    other.write_page("issues", [_issue("OPS-5", "Done")])
    other.finish({"updated": "2024-03-04T10:00:00+00:00"})
    load(db, tmp_path / "landing")
    full = Landing(tmp_path / "landing", "jira", "PAY", extract_id="20240102T000000000000Z-bbbbbbbb")
    full.write_page("issues", [_issue("PAY-1", "Done"), _issue("PAY-9", "To Do")])
    full.finish({"updated": "2024-03-04T10:00:00+00:00"})
    result = load(db, tmp_path / "landing", replace={"jira"})
    assert result.replaced == {"jira__issues": 1}
    assert _raw_issues(db) == [("1", "20240102T000000000000Z-bbbbbbbb", "Done"),
                               ("5", "20240101T000000000000Z-aaaaaaaa", "Done"),  # OPS was not re-extracted
                               ("9", "20240102T000000000000Z-bbbbbbbb", "To Do")]


def test_an_incremental_load_replaces_no_partition(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    for n, extract in enumerate(["20240101T000000000000Z-aaaaaaaa", "20240102T000000000000Z-bbbbbbbb"]):
        landing = Landing(tmp_path / "landing", "jira", "PAY", extract_id=extract)
        landing.write_page("issues", [_issue(f"PAY-{n + 1}", "Done")])
        landing.finish({"updated": "2024-03-04T10:00:00+00:00"})
        assert load(db, tmp_path / "landing").replaced == {}
    assert [r[0] for r in _raw_issues(db)] == ["1", "2"]


def test_duckdb_threads_default_to_one_more_than_cores_and_a_bad_value_is_one_clear_error(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    monkeypatch.delenv("FLOWLENS_DUCKDB_THREADS", raising=False)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        assert con.execute("select current_setting('threads')").fetchone()[0] == warehouse.usable_cpus() + 1
    monkeypatch.setenv("FLOWLENS_DUCKDB_THREADS", "two")
    with pytest.raises(WarehouseError, match="FLOWLENS_DUCKDB_THREADS must be a whole number.*'two'"), \
            warehouse.connect(tmp_path / "w.duckdb"):
        pass
