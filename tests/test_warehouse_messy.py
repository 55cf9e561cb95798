"""What real Jira sites do that a tidy one does not: deleted statuses, workflow migrations, JSM approvals that
coincide with an approval state. Hand-built changelogs -> load -> models -> marts (docs/metrics.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Config
from tests.test_warehouse_rules import MON, D, H, Org, asg, build, flag, jts, link, rows, st

OLD_IDS = iter(range(90, 200))


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return Org(tmp_path / "landing")


def deleted(name: str) -> tuple[str, str]:
    """A status the site's /status no longer lists: its id and name live on in old changelogs only."""
    return str(next(OLD_IDS)), name


def raw_st(frm: tuple[str, str], to: tuple[str, str]) -> dict:
    return {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": frm[0], "fromString": frm[1],
            "to": to[0], "toString": to[1]}


def listed(name: str) -> tuple[str, str]:
    return st(name, name)["to"], name


def resolution(set_: bool) -> dict:
    done = ("10000", "Done")
    return {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution",
            "from": None if set_ else done[0], "fromString": None if set_ else done[1],
            "to": done[0] if set_ else None, "toString": done[1] if set_ else None}


def workflow() -> dict:
    return {"field": "Workflow", "fieldtype": "jira", "from": "10100", "fromString": "Software Simplified Workflow",
            "to": "10200", "toString": "PLAT Workflow v2"}


# ------------------------------------------------------------------ statuses that no longer exist


def test_a_deleted_resolved_status_is_done_and_a_bulk_close_months_later_does_not_move_the_finish(
        org: Org, tmp_path: Path) -> None:
    resolved = deleted("Resolved")
    org.issue("PLAT-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 3 * D, "ana", [raw_st(listed("In Progress"), resolved)]),
        (MON + 40 * D, "admin", [raw_st(resolved, listed("Done"))]),  # the bulk close
    ])
    con = build(tmp_path, org)
    assert rows(con, "select finished_at, cycle_s from marts.item_flow") == [
        (MON + 3 * D, (3 * D - H).total_seconds())]
    assert rows(con, "select project_key, status_name, status_category, state, mapped_by, is_listed, items, "
                     "item_time_s from core.unmapped_statuses where not is_listed") == [
        ("PLAT", "Resolved", None, "done", "done_name", False, 1, (37 * D).total_seconds())]


@pytest.mark.parametrize("name", ["已完成", "完成", "Erledigt", "Terminé", "Concluído", "Closed", "Won't Do",
                                  "Cancelled", "Complete", "Done (old)"])
def test_done_like_names_and_translations_of_deleted_statuses_are_done(org: Org, tmp_path: Path, name: str) -> None:
    gone = deleted(name)
    org.issue("PLAT-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [raw_st(listed("In Progress"), gone)]),
        (MON + 9 * D, "admin", [raw_st(gone, listed("Done"))]),
    ])
    con = build(tmp_path, org)
    assert con.execute("select state, mapped_by from core.status_map where status_name = ?", [name]).fetchall() == [
        ("done", "done_name")]
    assert rows(con, "select finished_at from marts.item_flow") == [(MON + 2 * H,)]


def test_deleted_statuses_without_a_done_name_map_by_the_resolution_their_entry_set_or_cleared(
        org: Org, tmp_path: Path) -> None:
    shipped, parked, triage, incomplete = deleted("Shipped"), deleted("Parked"), deleted("Triage"), deleted(
        "Incomplete")
    org.issue("PLAT-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [raw_st(listed("In Progress"), shipped), resolution(True)]),
        (MON + 3 * H, "bob", [raw_st(shipped, parked), resolution(False)]),
        (MON + 4 * H, "bob", [raw_st(parked, triage)]),
        (MON + 5 * H, "bob", [raw_st(triage, incomplete)]),
        (MON + 6 * H, "bob", [raw_st(incomplete, listed("Done")), resolution(True)]),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select status, state from core.status_intervals order by visit_no") == [
        ("To Do", "backlog"), ("In Progress", "active"), ("Shipped", "done"), ("Parked", "active"),
        ("Triage", "active"), ("Incomplete", "active"), ("Done", "done")]
    assert rows(con, "select status_name, mapped_by, items, item_time_s from core.unmapped_statuses "
                     "where not is_listed order by status_name") == [
        ("Incomplete", "fallback", 1, 3600.0), ("Parked", "resolution_cleared", 1, 3600.0),
        ("Shipped", "resolution_set", 1, 3600.0), ("Triage", "fallback", 1, 3600.0)]
    # Shipped -> Parked reopened it
    assert rows(con, "select kind, reversed_at from marts.reversals") == [("reopened", MON + 3 * H)]


def test_a_listed_status_keeps_its_category_whatever_its_name(org: Org, tmp_path: Path) -> None:
    org.statuses["8"] = ("Ready to close", "indeterminate")
    org.issue("PLAT-1", MON, [(MON + H, "ana", [raw_st(listed("To Do"), ("8", "Ready to close"))]),
                              (MON + 2 * H, "ana", [raw_st(("8", "Ready to close"), listed("Done"))])])
    con = build(tmp_path, org)
    assert rows(con, "select state, mapped_by from core.status_map where status_name = 'Ready to close'") == [
        ("active", "category")]


# ------------------------------------------------------------------ workflow migrations


def test_a_workflow_migration_starts_a_visit_but_is_no_reversal_and_no_handoff(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "Done")]),
        (MON + 5 * D, "admin", [workflow(), st("Done", "In Progress"), asg("ana", "bob")]),
        (MON + 6 * D, "bob", [st("In Progress", "Done")]),
    ], assignee0="ana")
    org.issue("PAY-2", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "In Review")]),
        (MON + 3 * H, "admin", [workflow(), st("In Review", "To Do")]),
        (MON + 4 * H, "ana", [st("To Do", "Needs Decision")]),
        (MON + 5 * H, "admin", [st("Needs Decision", "In Progress"), workflow()]),
    ], assignee0="ana")
    con = build(tmp_path, org)
    assert rows(con, "select item_id, status, entered_at from core.status_intervals where item_id = 'jira:PAY-1' "
                     "order by visit_no")[-2:] == [
        ("jira:PAY-1", "In Progress", MON + 5 * D), ("jira:PAY-1", "Done", MON + 6 * D)]
    assert rows(con, "select * from marts.reversals") == []
    assert rows(con, "select * from marts.handoffs") == []
    assert rows(con, "select decided_at, decided_by from marts.approval_waits") == [(MON + 3 * H, None)]
    assert rows(con, "select decided_at, decided_by from marts.decision_waits") == [(MON + 5 * H, None)]


def test_the_same_changes_without_a_workflow_item_are_reversals_and_a_handoff(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "In Review")]),
        (MON + 3 * H, "lead", [st("In Review", "To Do")]),
        (MON + 4 * H, "ana", [st("To Do", "Done")]),
        (MON + 5 * D, "lead", [st("Done", "In Progress"), asg("ana", "bob")]),
    ], assignee0="ana")
    con = build(tmp_path, org)
    assert rows(con, "select kind from marts.reversals order by reversed_at") == [
        ("status_regression",), ("reopened",)]
    assert rows(con, "select from_owner, to_owner from marts.handoffs") == [("jira:ana", "jira:bob")]
    assert rows(con, "select decided_by from marts.approval_waits") == [("jira:lead",)]


# ------------------------------------------------------------------ JSM approvals


def jsm(org: Org, key: str, aid: str, created, completed, decision: str = "approved",
        approvers: tuple[str, ...] = ("boss",)) -> None:
    issue_id = next(i["id"] for i in org.issues if i["key"] == key)
    org.approvals.append({"issueId": issue_id, "issueKey": key, "approval": {
        "id": aid, "name": "Manager approval", "finalDecision": decision if completed else "pending",
        "createdDate": {"iso8601": jts(created)},
        "completedDate": {"iso8601": jts(completed)} if completed else None,
        "approvers": [{"approver": {"accountId": a}, "approverDecision": decision if completed else "pending"}
                      for a in approvers]}})


def test_a_jsm_approval_overlapping_an_approval_state_is_one_request(org: Org, tmp_path: Path) -> None:
    org.issue("OPS-1", MON, [
        (MON + H, "ana", [st("To Do", "In Review")]),
        (MON + 5 * H, "boss", [st("In Review", "Done")]),
    ], assignee0="ana")
    jsm(org, "OPS-1", "1", MON + H, MON + 5 * H)
    # an approval-state visit the JSM approval does not overlap stays a request of its own
    org.issue("OPS-2", MON, [
        (MON + H, "ana", [st("To Do", "In Review")]),
        (MON + 2 * H, "lead", [st("In Review", "In Progress")]),
        (MON + 6 * H, "boss", [st("In Progress", "Done")]),
    ], assignee0="ana")
    jsm(org, "OPS-2", "2", MON + 3 * H, MON + 4 * H, "declined")
    con = build(tmp_path, org)
    assert rows(con, "select item_id, source_kind, requested_of, decided_by, outcome from marts.approval_waits "
                     "order by item_id, requested_at") == [
        ("jira:OPS-1", "jsm", "jira:boss", "jira:boss", "approved"),
        ("jira:OPS-2", "jira_status", "jira:ana", "jira:lead", "rejected"),
        ("jira:OPS-2", "jsm", "jira:boss", "jira:boss", "declined")]
    assert rows(con, "select item_id, approval_requests, approval_wait_s from marts.item_flow order by item_id") == [
        ("jira:OPS-1", 1, 4 * 3600.0), ("jira:OPS-2", 2, 2 * 3600.0)]
    assert rows(con, "select item_id, count(*) from marts.wait_intervals where cause = 'approval' group by all "
                     "order by item_id") == [("jira:OPS-1", 1), ("jira:OPS-2", 2)]


# ------------------------------------------------------------------ waited_on in the wait ledger


def test_blocked_waits_name_the_blocking_item_and_its_owners_team_then(org: Org, tmp_path: Path) -> None:
    # PLAT-1 belongs to the platform team's project, but bob (core team) holds it, then carl (pay team)
    org.issue("PLAT-1", MON, [(MON + H, "bob", [st("To Do", "In Progress")]),
                              (MON + 4 * D, "bob", [asg("bob", "carl")])], assignee0="bob")
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")]),
                             (MON + 2 * H, "ana", [link("PLAT-1")]),
                             (MON + 3 * D, "ana", [st("In Progress", "Done")])])
    # a flag with a link added while flagged; a blocked status after the link is gone; a link set later on
    org.issue("PAY-2", MON, [(MON + H, "ana", [st("To Do", "In Progress"), flag(True)]),
                             (MON + 2 * H, "ana", [link("PLAT-1")]),
                             (MON + 3 * H, "ana", [flag(False), link("PLAT-1", add=False)]),
                             (MON + 5 * D, "ana", [st("In Progress", "Blocked")]),
                             (MON + 6 * D, "ana", [st("Blocked", "Done")])])
    cfg = Config.model_validate({"teams": [
        {"key": "pay", "jira_projects": ["PAY"], "members": [{"person": "jira:ana"}, {"person": "jira:carl"}]},
        {"key": "plat", "jira_projects": ["PLAT"]},
        {"key": "core", "members": [{"person": "jira:bob"}]},
    ]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select item_id, cause, started_at, waited_on, waited_on_team from marts.wait_intervals "
                     "where cause in ('blocked', 'dependency') order by item_id, started_at, cause") == [
        ("jira:PAY-1", "dependency", MON + 2 * H, "jira:PLAT-1", "core"),
        ("jira:PAY-2", "blocked", MON + H, "jira:PLAT-1", "core"),
        ("jira:PAY-2", "dependency", MON + 2 * H, "jira:PLAT-1", "core"),
        ("jira:PAY-2", "blocked", MON + 5 * D, None, None)]


# ------------------------------------------------------------------ the wait ledger's key


def ledger_duplicates(con) -> list[tuple]:
    return rows(con, "select item_id, cause, started_at, waited_on, count(*) from marts.wait_intervals "
                     "group by all having count(*) > 1")


def test_a_flag_and_a_blocked_status_from_one_instant_are_one_blocked_wait(org: Org, tmp_path: Path) -> None:
    # PAY-1: blocked and flagged by one history, the flag cleared first; PAY-2: a flag set while blocked, kept
    # after it; PAY-3: a flag ending as the blocked status begins (touching: one wait)
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")]),
                             (MON + 2 * H, "ana", [st("In Progress", "Blocked"), flag(True)]),
                             (MON + 5 * H, "ana", [flag(False)]),
                             (MON + 6 * H, "ana", [st("Blocked", "In Progress")])])
    org.issue("PAY-2", MON, [(MON + H, "ana", [st("To Do", "In Progress")]),
                             (MON + 2 * H, "ana", [st("In Progress", "Blocked")]),
                             (MON + 3 * H, "ana", [flag(True)]),
                             (MON + 4 * H, "ana", [st("Blocked", "In Progress")]),
                             (MON + 8 * H, "ana", [flag(False)])])
    org.issue("PAY-3", MON, [(MON + H, "ana", [st("To Do", "In Progress"), flag(True)]),
                             (MON + 2 * H, "ana", [flag(False), st("In Progress", "Blocked")]),
                             (MON + 3 * H, "ana", [st("Blocked", "Done")])])
    con = build(tmp_path, org)
    assert ledger_duplicates(con) == []
    assert rows(con, "select item_id, started_at, ended_at, waited_on, calendar_s from marts.wait_intervals "
                     "where cause = 'blocked' order by item_id") == [
        ("jira:PAY-1", MON + 2 * H, MON + 6 * H, None, 4 * 3600.0),
        ("jira:PAY-2", MON + 2 * H, MON + 8 * H, None, 6 * 3600.0),
        ("jira:PAY-3", MON + H, MON + 3 * H, None, 2 * 3600.0)]
    # blocked time is the union already; the ledger's blocked rows now sum to it
    assert rows(con, "select item_id, blocked_s from marts.item_flow order by item_id") == [
        ("jira:PAY-1", 4 * 3600.0), ("jira:PAY-2", 6 * 3600.0), ("jira:PAY-3", 2 * 3600.0)]


# ------------------------------------------------------------------ values the models do not know


def test_a_new_review_state_and_a_new_timeline_event_type_are_named_by_a_warning(org: Org, tmp_path: Path) -> None:
    import dagster as dg

    from tests.test_checks_plausible import run
    from tests.test_warehouse_rules import ev

    repo = "acme/api"
    org.pr(repo, 1, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"),
        ev("reviewed", MON + 2 * H, "bob", state="APPROVED_WITH_SUGGESTIONS"),  # a state GitHub may add
        ev("copilot_work_started", MON + 3 * H, "ana"),  # a timeline event type GitHub added
        ev("copilot_work_started", MON + 4 * H, "ana"),
        ev("commented", MON + 4 * H, "carl"),  # known, not read: no warning
        ev("merged", MON + 5 * H, "ana"), ev("closed", MON + 5 * H, "ana")])
    con = build(tmp_path, org)
    r = run(con, "unknown_values")
    assert not r.passed and r.severity == dg.AssetCheckSeverity.WARN
    listed_rows = r.metadata["rows"].value
    assert "what=GitHub review state, value=approved_with_suggestions, rows=1" in listed_rows
    assert "what=GitHub timeline event type, value=copilot_work_started, rows=2" in listed_rows
    assert "commented" not in listed_rows and r.metadata["offending_rows"].value == 2


def test_the_checks_list_of_known_timeline_event_types_is_the_connectors() -> None:
    """sql/checks/unknown_values.sql spells out the kinds the models read and the kinds the connectors drop."""
    import re

    from connectors.github_graphql import UNUSED_EVENTS
    from landing_format import TIMELINE_EVENTS
    from pipelines.warehouse import SQL_DIR

    sql = (SQL_DIR / "checks" / "unknown_values.sql").read_text()
    block = sql[sql.index("'GitHub timeline event type'"):]
    block = block[block.index("not in ("):block.index("group by")]
    listed = re.findall(r"'([a-z0-9_-]+)'", re.sub(r"--.*", "", block))
    assert len(listed) == len(set(listed)) and set(listed) == TIMELINE_EVENTS | UNUSED_EVENTS


# ------------------------------------------------------------------ deleted accounts


def test_a_deleted_jsm_approver_and_a_deleted_history_author_are_the_deleted_person(org: Org, tmp_path: Path) -> None:
    org.issue("OPS-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")]),
                             (MON + 6 * H, "ana", [st("In Progress", "Done")])], assignee0="ana")
    org.changelogs[-1]["changeHistories"][1]["author"] = {"displayName": "Former user", "active": False}
    jsm(org, "OPS-1", "1", MON + 2 * H, MON + 4 * H, approvers=("boss", "gone"))
    approver = org.approvals[-1]["approval"]["approvers"][1]
    approver["approver"] = {"displayName": "Former user", "active": False}  # no accountId, key or name
    con = build(tmp_path, org)
    assert rows(con, "select requested_of, decided_by, outcome from marts.approval_waits") == [
        ("deleted:user,jira:boss", "deleted:user,jira:boss", "approved")]
    assert rows(con, "select author_id from core.jira_changes_all where field_lower = 'status' order by created_at") == [
        ("jira:ana",), ("deleted:user",)]


def test_a_review_request_of_a_deleted_account_is_kept_as_the_deleted_person(org: Org, tmp_path: Path) -> None:
    # GraphQL answers a deleted reviewer as a null requestedReviewer and a null review author: the request and the
    # review land without a login (REST would say ghost); both are the deleted person's, and the wait is kept
    from tests.test_warehouse_rules import ev

    review = ev("reviewed", MON + 3 * H, "x", state="APPROVED")
    review["user"] = None
    org.pr("acme/api", 1, "ana", MON, [ev("review_requested", MON + H, "ana"), review,
                                       ev("merged", MON + 4 * H, "ana"), ev("closed", MON + 4 * H, "ana")])
    org.pr("acme/api", 2, "ana", MON, [ev("review_requested", MON + H, "ana", reviewer="ghost"),
                                       ev("reviewed", MON + 2 * H, "ghost", state="APPROVED")])
    con = build(tmp_path, org)
    assert rows(con, "select item_id, requested_of, decided_by, outcome, calendar_s from marts.approval_waits "
                     "order by item_id") == [
        ("github:acme/api#1", "deleted:user", "deleted:user", "approved", 2 * 3600.0),
        ("github:acme/api#2", "deleted:user", "deleted:user", "approved", 3600.0)]
