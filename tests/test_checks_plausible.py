"""Checks that fail loudly on implausible marts (sql/checks), not only on broken keys."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines import checks
from pipelines.warehouse import models
from tests.test_warehouse_messy import deleted, jsm, listed, raw_st
from tests.test_warehouse_rules import MON, D, H, Org, build, ev, gts, st

REPO = "acme/payments-api"


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return Org(tmp_path / "landing")


def run(con: duckdb.DuckDBPyConnection, name: str) -> dg.AssetCheckResult:
    return checks.sql_check(con, next(c for c in checks.sql_checks() if c.name == name))


def test_every_sql_check_is_attached_to_its_asset_with_its_severity() -> None:
    specs = {(s.asset_key.to_user_string(), s.name): s.blocking for s in checks.check_specs(models())}
    assert specs[("core/unmapped_statuses", "fallback_status_time")] is False
    assert specs[("marts/item_flow", "merged_pull_requests_end")] is True
    assert specs[("marts/item_flow", "cycle_within_age")] is True
    assert specs[("marts/approval_waits", "jsm_counted_once")] is True
    assert specs[("core/work_items", "unknown_values")] is False


def test_a_clean_warehouse_passes_every_sql_check(org: Org, tmp_path: Path) -> None:
    org.issue("OPS-1", MON, [(MON + H, "ana", [st("To Do", "In Review")]), (MON + 5 * H, "boss",
                                                                            [st("In Review", "Done")])])
    jsm(org, "OPS-1", "1", MON + H, MON + 5 * H)
    org.pr(REPO, 1, "ana", MON, [ev("merged", MON + H, "ana"), ev("closed", MON + H, "ana")])
    con = build(tmp_path, org)
    results = [checks.sql_check(con, c) for c in checks.sql_checks()]
    assert [(r.check_name, r.metadata["offending_rows"].value) for r in results if not r.passed] == []


def test_time_in_guessed_statuses_is_a_warning_naming_them(org: Org, tmp_path: Path) -> None:
    triage = deleted("Triage")
    org.issue("PLAT-1", MON, [(MON + H, "ana", [raw_st(listed("To Do"), triage)]),
                              (MON + 20 * D, "ana", [raw_st(triage, listed("Done"))])])
    con = build(tmp_path, org)
    r = run(con, "fallback_status_time")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.WARN
    assert "project_key=PLAT, statuses=Triage" in r.metadata["rows"].value


def test_a_merged_pull_request_that_never_ends_blocks(org: Org, tmp_path: Path) -> None:
    # the timeline lost its merge (e.g. events keyed by another spelling of the repository): still open
    org.pr(REPO, 1, "ana", MON, [ev("review_requested", MON + H, "ana", reviewer="bob")])
    org.pulls[REPO][0] |= {"state": "closed", "merged_at": gts(MON + 2 * H), "closed_at": gts(MON + 2 * H)}
    con = build(tmp_path, org)
    r = run(con, "merged_pull_requests_end")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.ERROR
    assert r.metadata["offending_rows"].value == 1 and f"github:{REPO}#1" in r.metadata["rows"].value


def test_a_cycle_longer_than_the_item_is_old_blocks(org: Org, tmp_path: Path) -> None:
    # an imported issue whose changelog starts before its creation date
    org.issue("PAY-1", MON, [(MON - 10 * D, "ana", [st("To Do", "In Progress")]),
                             (MON + D, "ana", [st("In Progress", "Done")])])
    con = build(tmp_path, org)
    r = run(con, "cycle_within_age")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.ERROR and "item_id=jira:PAY-1" in r.metadata[
        "rows"].value


def test_a_jsm_approval_counted_twice_blocks() -> None:
    con = duckdb.connect()
    con.execute("create schema marts; create table marts.approval_waits (item_id varchar, source_kind varchar, "
                "requested_at timestamptz, decided_at timestamptz)")
    con.execute("insert into marts.approval_waits values ('jira:OPS-1', 'jira_status', ?, ?), "
                "('jira:OPS-1', 'jsm', ?, ?), ('jira:OPS-2', 'jira_status', ?, ?), ('jira:OPS-2', 'jsm', ?, null)",
                [MON, MON + 4 * H, MON, MON + 4 * H, MON, MON + H, MON + 2 * H])
    r = run(con, "jsm_counted_once")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.ERROR
    assert r.metadata["offending_rows"].value == 1 and "item_id=jira:OPS-1" in r.metadata["rows"].value


def test_unknown_values_and_skipped_rows_are_counted(org: Org, tmp_path: Path) -> None:
    org.issue("OPS-1", MON, [(MON + H, "ana", [st("To Do", "In Review")])])
    jsm(org, "OPS-1", "1", MON + H, MON + 2 * H, "cancelled")
    jsm(org, "OPS-1", "2", MON + H, MON + 2 * H)
    org.approvals[-1]["issueId"] = "999"  # an approval of an issue that was not landed
    con = build(tmp_path, org)
    r = run(con, "unknown_values")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.WARN
    listed_rows = r.metadata["rows"].value
    assert "what=JSM finalDecision, value=cancelled, rows=1" in listed_rows
    assert "what=JSM approverDecision, value=cancelled, rows=1" in listed_rows
    assert "what=JSM approval of an issue not landed, value=None, rows=1" in listed_rows
