"""One test per metric rule: hand-built event sequences as landing pages -> load -> models -> marts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from landing_format import Landing
from pipelines.config import Config
from pipelines.warehouse import load, models, run_models

MON = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
D = timedelta(days=1)
AS_OF = datetime(2024, 4, 15, 12, 0, tzinfo=UTC)

STATUSES = {
    "1": ("To Do", "new"), "2": ("In Progress", "indeterminate"), "3": ("In Review", "indeterminate"),
    "4": ("Done", "done"), "5": ("Blocked", "indeterminate"), "6": ("Needs Decision", "indeterminate"),
    "7": ("Ready for QA", "indeterminate"),
}
BY_NAME = {name: sid for sid, (name, _) in STATUSES.items()}


def jts(dt: datetime, offset_h: int = 0) -> str:
    """Jira's timestamp format, e.g. 2024-03-01T09:15:02.123+0300."""
    local = dt.astimezone(timezone(timedelta(hours=offset_h)))
    sign = "+" if offset_h >= 0 else "-"
    return local.strftime("%Y-%m-%dT%H:%M:%S.000") + f"{sign}{abs(offset_h):02d}00"


def gts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user(uid: str | None) -> dict | None:
    return None if uid is None else {"accountId": uid, "displayName": uid.title()}


def status(name: str) -> dict:
    sid = BY_NAME[name]
    return {"id": sid, "name": name, "statusCategory": {"key": STATUSES[sid][1]}}


# change items
def st(frm: str, to: str) -> dict:
    return {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": BY_NAME[frm], "fromString": frm,
            "to": BY_NAME[to], "toString": to}


def asg(frm: str | None, to: str | None) -> dict:
    return {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee", "from": frm,
            "fromString": frm and frm.title(), "to": to, "toString": to and to.title()}


def flag(on: bool) -> dict:
    return {"field": "Flagged", "fieldtype": "custom", "fieldId": "customfield_10021",
            "from": None if on else "[10019]", "fromString": None if on else "Impediment",
            "to": "[10019]" if on else None, "toString": "Impediment" if on else None}


def link(key: str, add: bool = True) -> dict:
    text = f"This issue is blocked by {key}"
    return {"field": "Link", "fieldtype": "jira", "from": None if add else key, "fromString": None if add else text,
            "to": key if add else None, "toString": text if add else None}


@dataclass
class Org:
    """Builds Jira issues and GitHub pulls, then lands them as the connectors would."""

    root: Path
    issues: list[dict] = field(default_factory=list)
    changelogs: list[dict] = field(default_factory=list)
    pulls: dict[str, list[dict]] = field(default_factory=dict)
    events: dict[str, list[dict]] = field(default_factory=dict)
    gh_issues: dict[str, list[dict]] = field(default_factory=dict)
    approvals: list[dict] = field(default_factory=list)  # JSM approvals: {"issueId", "issueKey", "approval"}
    remote_links: dict[str, list[dict]] = field(default_factory=dict)  # issue key -> its RemoteIssueLinks
    statuses: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(STATUSES))  # what /status lists
    ids: Any = field(default_factory=lambda: itertools.count(10000))

    def issue(self, key: str, created: datetime, changes: list[tuple] = (), status0: str = "To Do",
              assignee0: str | None = None, offset_h: int = 0, links: list[dict] = (), flagged: bool = False,
              embed: bool = False) -> None:
        """changes: (when, author, [items]) or (when, author, [items], history_id)."""
        cur_status, cur_assignee = status0, assignee0
        histories = []
        for ch in changes:
            when, author, items = ch[:3]
            hid = ch[3] if len(ch) > 3 else next(self.ids)
            histories.append({"id": str(hid), "author": user(author), "created": jts(when, offset_h),
                              "items": items})
        for h in sorted(histories, key=lambda h: (h["created"], int(h["id"]))):
            for it in h["items"]:
                if it["field"] == "status":
                    cur_status = it["toString"]
                if it["field"] == "assignee":
                    cur_assignee = it["to"]
        last = max([created] + [c[0] for c in changes])
        fields = {
            "summary": f"Issue {key}", "issuetype": {"name": "Story"}, "project": {"key": key.split("-")[0]},
            "status": status(cur_status), "assignee": user(cur_assignee), "reporter": user("rep"),
            "created": jts(created, offset_h), "updated": jts(last, offset_h), "resolution": None,
            "resolutiondate": None, "priority": {"name": "Medium"}, "labels": [], "issuelinks": list(links),
            "customfield_10021": [{"value": "Impediment"}] if flagged else None,
        }
        issue = {"id": str(len(self.issues) + 1), "key": key, "fields": fields}
        if embed:
            issue["changelog"] = {"startAt": 0, "maxResults": 100, "total": len(histories), "histories": histories}
        self.issues.append(issue)
        self.changelogs.append({"issueId": issue["id"], "issueKey": key, "changeHistories": histories})

    def gh_issue(self, repo: str, number: int, author: str, created: datetime, events: list[dict],
                 labels: list[str] = (), assignees: list[str] = ()) -> None:
        closed = [e for e in events if e["event"] in ("closed", "reopened")]
        is_closed = bool(closed) and closed[-1]["event"] == "closed"
        self.gh_issues.setdefault(repo, []).append({
            "id": 7000 + number, "number": number, "title": f"Issue {number}", "user": {"login": author},
            "state": "closed" if is_closed else "open", "created_at": gts(created),
            "updated_at": gts(created + 30 * D), "closed_at": closed[-1]["created_at"] if is_closed else None,
            "labels": [{"name": n} for n in labels], "assignees": [{"login": a} for a in assignees],
            "repository_url": f"https://api.github.com/repos/{repo}",
        })
        self.events.setdefault(repo, []).extend(
            {"repository": repo, "issue_number": number, "event": e} for e in events)

    def pr(self, repo: str, number: int, author: str, created: datetime, events: list[dict],
           draft: bool = False, labels: list[str] = ()) -> None:
        merged = next((e for e in events if e["event"] == "merged"), None)
        closed = [e for e in events if e["event"] in ("closed", "reopened")]
        is_closed = bool(closed) and closed[-1]["event"] == "closed"
        self.pulls.setdefault(repo, []).append({
            "id": 5000 + number, "number": number, "title": f"PR {number}", "user": {"login": author},
            "state": "closed" if is_closed or merged else "open", "draft": draft,
            "created_at": gts(created), "updated_at": gts(created + 30 * D),
            "closed_at": closed[-1]["created_at"] if is_closed else None,
            "merged_at": merged["created_at"] if merged else None,
            "merged_by": merged and merged["actor"], "labels": [{"name": n} for n in labels],
            "requested_reviewers": [],
            "requested_teams": [], "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "base": {"repo": {"full_name": repo}},
        })
        self.events.setdefault(repo, []).extend(
            {"repository": repo, "issue_number": number, "event": e} for e in events)

    def land(self, extract: str = "20240101T000000000000Z-aaaaaaaa", cursor: dict | None = None) -> None:
        site = Landing(self.root, "jira", "_site", extract_id=extract)
        site.write_page("statuses", [{"id": sid, "name": n, "statusCategory": {"key": c}}
                                     for sid, (n, c) in self.statuses.items()])
        site.write_page("fields", [{"id": "customfield_10021", "name": "Flagged", "custom": True, "schema": {}}])
        site.finish(cursor or {"at": "site"})
        projects = sorted({i["key"].split("-")[0] for i in self.issues})
        for p in projects:
            lp = Landing(self.root, "jira", p, extract_id=extract)
            lp.write_page("issues", [i for i in self.issues if i["key"].startswith(p + "-")])
            lp.write_page("changelogs", [c for c in self.changelogs if c["issueKey"].startswith(p + "-")])
            if approvals := [a for a in self.approvals if a["issueKey"].startswith(p + "-")]:
                lp.write_page("approvals", approvals)
            if self.remote_links:
                lp.write_page("remote_links", [
                    {"issueId": i["id"], "issueKey": i["key"], "remoteLinks": self.remote_links.get(i["key"], [])}
                    for i in self.issues if i["key"].startswith(p + "-")])
            lp.finish(cursor or {"updated": "2024-04-01"})
        for repo in sorted(set(self.pulls) | set(self.gh_issues)):
            lg = Landing(self.root, "github", repo, extract_id=extract)
            lg.write_page("pull_requests", self.pulls.get(repo, []))
            lg.write_page("issues", self.gh_issues.get(repo, []))
            lg.write_page("timeline_events", self.events.get(repo, []))
            lg.finish(cursor or {"since": "2024-04-01"})


ids = itertools.count(900000)


def ev(kind: str, at: datetime, actor: str, **extra: Any) -> dict:
    e = {"id": next(ids), "event": kind, "actor": {"login": actor}, "created_at": gts(at)}
    if kind == "reviewed":
        e = {"id": e["id"], "event": "reviewed", "user": {"login": actor}, "submitted_at": gts(at),
             "state": extra.pop("state"), "body": extra.pop("body", "")}
    for k, v in extra.items():
        if k == "reviewer":
            e["requested_reviewer"] = {"login": v}
        elif k == "team":
            e["requested_team"] = {"slug": v, "name": v}
        elif k == "label":
            e["label"] = {"name": v}
        else:
            e[k] = v
    if kind in ("review_requested", "review_request_removed"):
        e["review_requester"] = {"login": actor}
    return e


def build(tmp_path: Path, org: Org, config: Config | None = None, as_of: datetime = AS_OF) -> duckdb.DuckDBPyConnection:
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    run_models(db, config or Config(), as_of)
    return duckdb.connect(str(db), read_only=True)


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return Org(tmp_path / "landing")


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


# ------------------------------------------------------------------ handoffs


def test_a_unassigned_b_is_one_handoff(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "boss", [st("To Do", "In Progress"), asg(None, "ana")]),
        (MON + 2 * H, "ana", [asg("ana", None)]),
        (MON + 5 * H, "boss", [asg(None, "bob")]),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select from_owner, to_owner, handed_off_at from marts.handoffs") == [
        ("jira:ana", "jira:bob", MON + 5 * H)]
    unowned = rows(con, "select started_at, ended_at from marts.wait_intervals where cause = 'unowned'")
    assert unowned == [(MON + 2 * H, MON + 5 * H)]
    assert rows(con, "select unowned_active_s from marts.item_flow") == [(3 * 3600,)]


def test_first_assignment_and_final_unassignment_are_not_handoffs(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "boss", [asg(None, "ana")]),
        (MON + 2 * H, "ana", [asg("ana", None)]),
    ])
    org.issue("PAY-2", MON, [(MON + H, "boss", [asg(None, "ana")]), (MON + 2 * H, "boss", [asg("ana", None)]),
                             (MON + 3 * H, "boss", [asg(None, "ana")])])  # A -> unassigned -> A
    con = build(tmp_path, org)
    assert rows(con, "select count(*) from marts.handoffs") == [(0,)]


def test_changes_while_done_are_ignored(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "Done"), asg("ana", "bob")]),  # done + reassign: ignored
        (MON + 3 * H, "bob", [asg("bob", "cat")]),  # while done: ignored
        (MON + 4 * H, "cat", [st("Done", "In Progress"), asg("cat", "dan")]),  # reopen + reassign: counted
    ], assignee0="ana")
    con = build(tmp_path, org)
    assert rows(con, "select from_owner, to_owner from marts.handoffs") == [("jira:cat", "jira:dan")]


def test_bounce(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [asg("ana", "bob")]),
        (MON + 3 * H, "bob", [asg("bob", "ana")]),
    ], assignee0="ana")
    con = build(tmp_path, org)
    assert rows(con, "select from_owner, to_owner, is_bounce from marts.handoffs order by handed_off_at") == [
        ("jira:ana", "jira:bob", False), ("jira:bob", "jira:ana", True)]
    assert rows(con, "select handoffs, bounces, distinct_owners from marts.item_flow") == [(2, 1, 2)]


def test_data_center_changelog_user_names_resolve_to_user_keys(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress"), asg("ana", "bob")])], assignee0="ana")
    dc = {"ana": {"key": "JIRAUSER10001", "name": "ana"}, "bob": {"key": "JIRAUSER10002", "name": "bob"}}
    fields = org.issues[-1]["fields"]
    fields["assignee"], fields["reporter"] = dc["bob"], dc["ana"]
    org.changelogs[-1]["changeHistories"][0]["author"] = dc["bob"]  # bob is known from here
    con = build(tmp_path, org)
    assert rows(con, "select from_owner, to_owner from marts.handoffs") == [("jira:JIRAUSER10001", "jira:JIRAUSER10002")]


def test_team_handoff_uses_membership_at_the_instant(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress"), asg("ana", "bob")])], assignee0="ana")
    cfg = Config.model_validate({"teams": [
        {"key": "pay", "members": [{"person": "jira:ana"}]},
        {"key": "web", "members": [{"person": "jira:bob", "valid_from": datetime(2024, 3, 4, 9, 30, tzinfo=UTC)}]},
    ]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select from_team, to_team, is_team_handoff from marts.handoffs") == [("pay", "web", True)]
    assert rows(con, "select team from marts.item_flow") == [("pay",)]


# ------------------------------------------------------------------ reviews and approvals

REPO = "acme/api"


def test_team_review_request_answered_by_a_member(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 1, "ana", MON, [
        ev("review_requested", MON + H, "ana", team="payments"),
        ev("reviewed", MON + 3 * H, "bob", state="approved", body="lgtm"),
        ev("merged", MON + 4 * H, "ana"),
        ev("closed", MON + 4 * H, "ana"),
    ])
    cfg = Config.model_validate({"teams": [{"key": "pay", "github_team": "payments"}]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select requested_of, requested_of_team, decided_by, outcome, calendar_s, is_open "
                     "from marts.approval_waits") == [
        ("github-team:acme/payments", "pay", "github:bob", "approved", 7200.0, False)]
    assert rows(con, "select from_owner, to_owner, kind, is_bounce from marts.handoffs order by handed_off_at") == [
        ("github:ana", "github-team:acme/payments", "review_request", False),
        ("github:bob", "github:ana", "review_return", True)]
    assert rows(con, "select state from core.status_intervals order by visit_no") == [
        ("active",), ("approval",), ("queue",), ("done",)]
    assert rows(con, "select time_to_first_review_s, time_to_approval_s from marts.item_flow") == [
        (3 * 3600.0, 3 * 3600.0)]


def test_withdrawn_request(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 2, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"),
        ev("review_request_removed", MON + 2 * H, "ana", reviewer="bob"),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select outcome, decided_by, calendar_s from marts.approval_waits") == [
        ("withdrawn", "github:ana", 3600.0)]
    assert rows(con, "select kind from marts.handoffs") == [("review_request",)]


def test_approval_after_changes_requested_is_a_second_round(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 3, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"),
        ev("reviewed", MON + 2 * H, "bob", state="changes_requested", body="fix"),
        ev("review_requested", MON + 3 * H, "ana", reviewer="bob"),
        ev("reviewed", MON + 3 * H + timedelta(minutes=2), "bob", state="approved"),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select outcome from marts.approval_waits order by requested_at") == [
        ("changes_requested",), ("approved",)]
    assert rows(con, "select approval_requests, approval_rounds, fast_approvals, bounces from marts.item_flow") == [
        (2, 1, 1, 3)]
    assert rows(con, "select count(*) from marts.reversals") == [(0,)]


def test_bot_review_request_is_ignored_and_merge_ends_the_wait(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 4, "ana", MON, [
        ev("review_requested", MON + H, "renovate[bot]", reviewer="bob"),
        ev("review_requested", MON + H, "ana", reviewer="cat"),
        ev("merged", MON + 2 * H, "ana"),
        ev("closed", MON + 2 * H, "ana"),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select requested_of, outcome from marts.approval_waits") == [
        ("github:cat", "merged_without_review")]


def test_reopen_and_reapproval_reversals(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "Done")]),
        (MON + 3 * H, "bob", [st("Done", "In Progress")]),
    ])
    org.pr(REPO, 5, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"),
        ev("reviewed", MON + 2 * H, "bob", state="approved"),
        ev("review_requested", MON + 3 * H, "ana", reviewer="cat"),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select item_id, kind, reversed_at from marts.reversals order by item_id") == [
        ("github:acme/api#5", "reapproval", MON + 3 * H), ("jira:PAY-1", "reopened", MON + 3 * H)]


def test_dismissed_review_keeps_its_state_and_is_a_reversal(org: Org, tmp_path: Path) -> None:
    review = ev("reviewed", MON + 2 * H, "bob", state="dismissed")
    org.pr(REPO, 6, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"), review,
        ev("review_dismissed", MON + 3 * H, "ana",
           dismissed_review={"state": "approved", "review_id": review["id"]}),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select outcome from marts.approval_waits") == [("approved",)]
    assert rows(con, "select kind from marts.reversals") == [("approval_dismissed",)]
    assert rows(con, "select state from core.status_intervals order by visit_no") == [
        ("active",), ("approval",), ("queue",), ("active",)]


def test_review_dismissed_after_as_of_was_still_an_approval_at_as_of(org: Org, tmp_path: Path) -> None:
    # fetched after the dismissal, the review says "dismissed"; measured before it, it was an approval
    review = ev("reviewed", MON + 2 * H, "bob", state="dismissed")
    org.pr(REPO, 6, "ana", MON, [
        ev("review_requested", MON + H, "ana", reviewer="bob"), review,
        ev("review_dismissed", MON + 30 * H, "ana",
           dismissed_review={"state": "approved", "review_id": review["id"]}),
    ])
    con = build(tmp_path, org, as_of=MON + 5 * H)
    assert rows(con, "select outcome from marts.approval_waits") == [("approved",)]
    assert rows(con, "select count(*) from marts.reversals") == [(0,)]
    assert rows(con, "select state, is_open from core.status_intervals order by visit_no") == [
        ("active", False), ("approval", False), ("queue", True)]


def test_jira_approval_state_rejected_then_approved(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Review")]),
        (MON + 2 * H, "bob", [st("In Review", "In Progress")]),
        (MON + 3 * H, "ana", [st("In Progress", "In Review")]),
        (MON + 4 * H, "bob", [st("In Review", "Done")]),
    ], assignee0="bob")
    con = build(tmp_path, org)
    assert rows(con, "select requested_of, decided_by, outcome from marts.approval_waits order by requested_at") == [
        ("jira:bob", "jira:bob", "rejected"), ("jira:bob", "jira:bob", "approved")]
    assert rows(con, "select approval_rounds from marts.item_flow") == [(1,)]


# ------------------------------------------------------------------ decisions


def test_decision_status_and_remote_decision(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "Needs Decision")]),
        (MON + 3 * H, "cto", [st("Needs Decision", "In Progress")]),
    ], assignee0="ana")
    cfg = Config.model_validate({"teams": [
        {"key": "pay", "jira_projects": ["PAY"], "members": [{"person": "jira:ana"}]},
        {"key": "exec", "members": [{"person": "jira:cto"}]},
    ]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select decided_by, decided_by_team, owner_team, is_remote_decision, calendar_s "
                     "from marts.decision_waits") == [("jira:cto", "exec", "pay", True, 7200.0)]


def test_github_decision_label(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 7, "ana", MON, [
        ev("labeled", MON + H, "ana", label="needs-decision"),
        ev("unlabeled", MON + 4 * H, "lead", label="needs-decision"),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select decided_by, calendar_s, business_s from marts.decision_waits") == [
        ("github:lead", 3 * 3600.0, 3 * 3600.0)]


def test_label_present_at_creation_starts_a_decision_wait(org: Org, tmp_path: Path) -> None:
    org.pr(REPO, 8, "ana", MON, [ev("unlabeled", MON + 2 * H, "lead", label="needs-decision")],
           labels=[])  # first event removes it: it was there at creation
    org.pr(REPO, 9, "ana", MON, [], labels=["needs-discussion"])  # there now, never added: since creation
    con = build(tmp_path, org)
    assert rows(con, "select item_id, requested_at, decided_by, is_open from marts.decision_waits order by item_id") == [
        ("github:acme/api#8", MON, "github:lead", False), ("github:acme/api#9", MON, None, True)]


def test_github_issue_states_follow_assignees_labels_and_close(org: Org, tmp_path: Path) -> None:
    org.gh_issue(REPO, 20, "ana", MON, [
        ev("assigned", MON + H, "ana", assignee={"login": "bob"}),
        ev("labeled", MON + 2 * H, "bob", label="blocked"),
        ev("unlabeled", MON + 3 * H, "bob", label="blocked"),
        ev("closed", MON + 4 * H, "bob"),
    ])
    cfg = Config.model_validate({"status_mapping": {"github_labels": {"blocked": "blocked"}},
                                 "teams": [{"key": "web", "members": [{"person": "github:bob"}]}]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select state, owner_id from core.status_intervals order by visit_no") == [
        ("backlog", None), ("active", "github:bob"), ("blocked", "github:bob"), ("active", "github:bob"),
        ("done", "github:bob")]
    assert rows(con, "select kind, team, blocked_s, cycle_s from marts.item_flow") == [("issue", "web", 3600.0, 3 * 3600.0)]


# ------------------------------------------------------------------ blocked and dependencies


def test_flag_overlapping_blocked_status_counted_once(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON, "ana", [st("To Do", "In Progress")]),
        (MON + H, "ana", [st("In Progress", "Blocked")]),
        (MON + 2 * H, "ana", [flag(True)]),
        (MON + 3 * H, "ana", [st("Blocked", "In Progress")]),
        (MON + 4 * H, "ana", [flag(False)]),
        (MON + 5 * H, "ana", [st("In Progress", "Done")]),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select blocked_s, active_s, waiting_s, cycle_s from marts.item_flow") == [
        (3 * 3600.0, 2 * 3600.0, 3 * 3600.0, 5 * 3600.0)]


def test_dependency_on_an_item_that_is_later_reopened(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-9", MON, [
        (MON + 2 * H, "x", [st("To Do", "Done")]),
        (MON + 5 * H, "x", [st("Done", "In Progress")]),
        (MON + 7 * H, "x", [st("In Progress", "Done")]),
    ])
    org.issue("PAY-1", MON, [
        (MON, "ana", [st("To Do", "In Progress")]),
        (MON + H, "ana", [link("PAY-9")]),
        (MON + 10 * H, "ana", [st("In Progress", "Done")]),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select started_at, ended_at, blocking_item_id from core.blocked_pieces "
                     "where item_id = 'jira:PAY-1' order by started_at") == [
        (MON + H, MON + 2 * H, "jira:PAY-9"), (MON + 5 * H, MON + 7 * H, "jira:PAY-9")]
    assert rows(con, "select blocked_s from marts.item_flow where item_id = 'jira:PAY-1'") == [(3 * 3600.0,)]
    assert rows(con, "select count(*) from marts.wait_intervals where cause = 'dependency'") == [(2,)]


def test_current_link_without_changelog_blocks_from_creation(org: Org, tmp_path: Path) -> None:
    blocked_by = {"id": "1", "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                  "inwardIssue": {"key": "OPS-1"}}
    org.issue("PAY-1", MON, [(MON + 2 * H, "ana", [st("To Do", "Done")])], links=[blocked_by])
    con = build(tmp_path, org)
    assert rows(con, "select started_at, ended_at, blocking_team from core.blocked_pieces") == [
        (MON, MON + 2 * H, "unknown")]


# ------------------------------------------------------------------ time


def test_friday_16_to_monday_10_is_two_business_hours(org: Org, tmp_path: Path) -> None:
    fri = datetime(2024, 3, 8, 16, 0, tzinfo=UTC)
    org.issue("PAY-1", MON, [(fri, "ana", [st("To Do", "In Review")]),
                             (fri + 2 * D + 18 * H, "bob", [st("In Review", "Done")])])
    con = build(tmp_path, org)
    assert rows(con, "select calendar_s, business_s from marts.approval_waits") == [(66 * 3600.0, 7200.0)]


def test_wait_across_a_daylight_saving_change(org: Org, tmp_path: Path) -> None:
    # Berlin moves to summer time on Sunday 2024-03-31: Friday 16:00 CET = 15:00 UTC, Monday 10:00 CEST = 08:00 UTC.
    fri = datetime(2024, 3, 29, 15, 0, tzinfo=UTC)
    mon = datetime(2024, 4, 1, 8, 0, tzinfo=UTC)
    org.issue("PAY-1", MON, [(fri, "ana", [st("To Do", "In Review")]), (mon, "bob", [st("In Review", "Done")])])
    cfg = Config.model_validate({
        "teams": [{"key": "pay", "calendar": "emea", "jira_projects": ["PAY"]}],
        "calendars": {"emea": {"timezone": "Europe/Berlin"}},
    })
    con = build(tmp_path, org, cfg)
    assert rows(con, "select calendar_s, business_s from marts.approval_waits") == [(65 * 3600.0, 7200.0)]


def test_working_hours_off_the_utc_hour(org: Org, tmp_path: Path) -> None:
    # Kolkata is UTC+05:30 and the day 09:15-17:45: every boundary falls inside a UTC hour. Tuesday 17:00 IST
    # (11:30 UTC) to Wednesday 09:25 IST (03:55 UTC, in the UTC hour where the day starts) is 45 + 10 minutes.
    tue = datetime(2024, 3, 5, 11, 30, tzinfo=UTC)
    wed = datetime(2024, 3, 6, 3, 55, tzinfo=UTC)
    org.issue("PAY-1", MON, [(tue, "ana", [st("To Do", "In Review")]), (wed, "bob", [st("In Review", "Done")])])
    cfg = Config.model_validate({
        "teams": [{"key": "pay", "calendar": "in", "jira_projects": ["PAY"]}],
        "calendars": {"in": {"timezone": "Asia/Kolkata", "hours": ["09:15", "17:45"]}},
    })
    con = build(tmp_path, org, cfg)
    assert rows(con, "select calendar_s, business_s from marts.approval_waits") == [
        ((wed - tue).total_seconds(), 55 * 60.0)]


def test_holidays_are_not_working_time(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [(MON, "ana", [st("To Do", "In Review")]), (MON + 2 * D, "bob", [st("In Review", "Done")])])
    cfg = Config.model_validate({"calendars": {"default": {"holidays": ["2024-03-05"]}}})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select business_s from marts.approval_waits") == [(8 * 3600.0,)]


def test_time_after_the_last_working_day_counts_the_whole_calendar(org: Org, tmp_path: Path) -> None:
    # A Saturday-only calendar: the last working interval (Saturday 13 April, 09:00-17:00 UTC) ends more than a
    # day before as_of (Monday 15 April, 12:00). An item still open at as_of has worked every Saturday since it
    # entered, not minus one day (found by tests/test_metric_properties.py).
    sat = datetime(2024, 4, 6, 9, 0, tzinfo=UTC)
    org.issue("PAY-1", MON, [(sat, "ana", [st("To Do", "In Review")])])
    cfg = Config.model_validate({"calendars": {"default": {"workdays": ["sat"]}}})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select business_s from marts.approval_waits") == [(2 * 8 * 3600.0,)]
    assert rows(con, "select business_s from core.status_intervals where is_open") == [(2 * 8 * 3600.0,)]


def test_offsets_plus_0800_and_minus_0500(org: Org, tmp_path: Path) -> None:
    # created 17:00 +0800 = 09:00 UTC; the change is written at -0500 (05:00 local = 10:00 UTC).
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")])], offset_h=8)
    org.issue("PAY-2", MON, [(MON + H, "ana", [st("To Do", "In Progress")])], offset_h=-5)
    con = build(tmp_path, org)
    assert rows(con, "select item_id, entered_at, exited_at, calendar_s from core.status_intervals "
                     "where visit_no = 1 order by item_id") == [
        ("jira:PAY-1", MON, MON + H, 3600.0), ("jira:PAY-2", MON, MON + H, 3600.0)]


def test_two_changes_at_the_same_instant_are_ordered_by_id(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("In Progress", "Done")], 21),  # listed first, applies second
        (MON + H, "ana", [st("To Do", "In Progress")], 20),
    ])
    con = build(tmp_path, org)
    assert rows(con, "select status, calendar_s, is_open from core.status_intervals order by visit_no") == [
        ("To Do", 3600.0, False), ("In Progress", 0.0, False), ("Done", (AS_OF - MON - H).total_seconds(), True)]
    assert rows(con, "select finished_at, cycle_s from marts.item_flow") == [(MON + H, 0.0)]


def test_embedded_and_fetched_histories_are_deduplicated(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")])], embed=True)
    con = build(tmp_path, org)
    assert rows(con, "select count(distinct history_id) from staging.stg_jira__change_items") == [(1,)]
    assert rows(con, "select count(*) from core.status_intervals") == [(2,)]


def test_status_mapping_order_and_unmapped_listing(org: Org, tmp_path: Path) -> None:
    org.issue("WEB-1", MON, [(MON + H, "ana", [st("To Do", "Ready for QA")]),
                             (MON + 2 * H, "ana", [st("Ready for QA", "In Review")])])
    cfg = Config.model_validate({"status_mapping": {"projects": {"WEB": {"In Review": "blocked"}}}})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select status, state from core.status_intervals order by visit_no") == [
        ("To Do", "backlog"), ("Ready for QA", "queue"), ("In Review", "blocked")]
    assert rows(con, "select status_name from core.unmapped_statuses") == [("To Do",)]


# ------------------------------------------------------------------ whole-mart properties


def mixed_org(org: Org) -> None:
    for n in range(6):
        t = MON + n * D
        org.issue(f"PAY-{n + 1}", t, [
            (t + H, "ana", [st("To Do", "In Progress"), asg(None, "ana")]),
            (t + 2 * H, "ana", [st("In Progress", "In Review"), asg("ana", "bob")]),
            (t + 3 * H, "bob", [st("In Review", "Needs Decision"), flag(True)]),
            (t + 5 * H, "cto", [st("Needs Decision", "Done"), flag(False)]),
        ] + ([(t + 6 * H, "ana", [st("Done", "In Progress")])] if n % 2 else [])
          + ([(t + H, "ana", [link("PAY-2")])] if n == 2 else []))
        org.pr(REPO, 100 + n, "ana", t, [
            ev("review_requested", t + H, "ana", reviewer="bob"),
            ev("review_requested", t + H, "ana", team="payments"),
            ev("reviewed", t + 2 * H, "bob", state="changes_requested"),
            ev("labeled", t + 2 * H, "bob", label="needs-decision"),
            ev("review_requested", t + 3 * H, "ana", reviewer="bob"),
            ev("reviewed", t + 4 * H, "bob", state="approved"),
        ] + ([ev("merged", t + 5 * H, "ana"), ev("closed", t + 5 * H, "ana")] if n % 3 else []))
        org.pulls[REPO][-1]["title"] = f"PAY-{n + 1}: change {n}"  # implements the issue (marts.item_links)


def test_every_table_key_is_unique_and_every_mart_documented(org: Org, tmp_path: Path) -> None:
    mixed_org(org)
    # the edges of the keys: two labels present at creation (two events at ord 0), two assignments at one instant
    org.pr(REPO, 77, "ana", MON, [], labels=["needs-discussion", "blocked"])
    org.issue("PAY-77", MON, [(MON + H, "ana", [asg(None, "ana")], 70), (MON + H, "ana", [asg("ana", "bob")], 71)])
    con = build(tmp_path, org)
    tables = {r[0] for r in rows(con, "select schema_name || '.' || table_name from duckdb_tables() "
                                      "where schema_name in ('staging', 'core', 'marts')")}
    keyed = {m.name: ", ".join(m.key) for m in models() if m.key}
    assert tables <= set(keyed), "every table declares its key"
    for table, key in keyed.items():
        total, distinct = rows(con, f"select count(*), count(distinct ({key})) from {table}")[0]
        assert total == distinct, table
        assert total > 0 or not table.startswith("marts."), table
    for mart in (t.split(".")[1] for t in keyed if t.startswith("marts.")):
        undocumented = rows(con, f"select column_name from duckdb_columns() where schema_name = 'marts' "
                                 f"and table_name = '{mart}' and comment is null")
        assert undocumented == [], mart
    assert rows(con, "select count(*) from duckdb_tables() where schema_name = 'marts' and comment is null") == [(0,)]


def test_two_runs_with_the_same_as_of_give_identical_marts(org: Org, tmp_path: Path, monkeypatch) -> None:
    mixed_org(org)
    org.land()
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    monkeypatch.setenv("FLOWLENS_AS_OF", "2024-04-01T00:00:00Z")
    snapshots = []
    for _ in range(2):
        run_models(db, Config())
        with duckdb.connect(str(db), read_only=True) as con:
            snapshots.append({m.name: rows(con, f"select * from {m.name} order by all")
                              for m in models() if m.layer == "marts"})
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["marts.item_flow"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert rows(con, "select as_of from config.run") == [(datetime(2024, 4, 1, tzinfo=UTC),)]


def test_mean_wip_counts_partial_and_whole_weeks(org: Org, tmp_path: Path) -> None:
    # one item in progress from Monday 09:00 of week 10 to Wednesday 09:00 of week 13, one from Friday of
    # week 11 until as_of (week 16): week 10 has 6 days 15 hours of the first, weeks 11-12 all of it
    day = timedelta(days=1)
    org.issue("PAY-1", MON - H, [(MON, "ana", [st("To Do", "In Progress")]),
                                 (MON + 23 * day, "ana", [st("In Progress", "Done")])])
    org.issue("PAY-2", MON, [(MON + 11 * day, "bob", [st("To Do", "In Progress")])])
    cfg = Config.model_validate({"privacy": {"min_group_size": 1}, "teams": [
        {"key": "pay", "jira_projects": ["PAY"], "members": [{"person": "jira:ana"}, {"person": "jira:bob"}]}]})
    con = build(tmp_path, org, cfg)
    wip = dict(rows(con, "select strftime(week_start, '%G-W%V'), mean_wip from marts.team_weekly order by 1"))
    week = 7 * 24.0
    assert wip["2024-W10"] == pytest.approx((week - 9) / week)
    assert wip["2024-W11"] == pytest.approx(1 + (3 * 24 - 9) / week)  # PAY-2 from Friday 09:00
    assert wip["2024-W12"] == pytest.approx(2.0)
    assert wip["2024-W13"] == pytest.approx(1 + (2 * 24 + 9) / week)
    assert wip["2024-W14"] == pytest.approx(1.0)
    as_of_week = (AS_OF - datetime(2024, 4, 15, tzinfo=UTC)).total_seconds() / 3600
    assert wip["2024-W16"] == pytest.approx(as_of_week / week)
    assert len(wip) == 7


def test_team_weekly_and_handoff_matrix_hide_small_teams(org: Org, tmp_path: Path) -> None:
    mixed_org(org)
    org.issue("PAY-99", MON, [(MON + H, "ana", [st("To Do", "In Progress"), asg("ana", "cto")])], assignee0="ana")
    cfg = Config.model_validate({"privacy": {"min_group_size": 2}, "teams": [
        {"key": "pay", "jira_projects": ["PAY"], "github_repositories": [REPO],
         "members": [{"person": "jira:ana"}, {"person": "jira:bob"}, {"person": "github:ana"}]},
        {"key": "exec", "members": [{"person": "jira:cto"}]},
    ]})
    con = build(tmp_path, org, cfg)
    teams = {r[0] for r in rows(con, "select team from marts.team_weekly")}
    assert teams == {"pay"}
    finished = rows(con, "select count(*) from marts.item_flow where finished_at is not null")[0][0]
    assert rows(con, "select sum(throughput) from marts.team_weekly") == [(finished,)]
    assert rows(con, "select sum(handoffs) from marts.handoff_matrix") == rows(con, "select count(*) from marts.handoffs")
    # exec has one member: never named, reported as other
    assert rows(con, "select count(*) from marts.handoff_matrix where 'exec' in (from_team, to_team)") == [(0,)]
    assert rows(con, "select from_team, handoffs from marts.handoff_matrix where to_team = 'other'") == [("pay", 1)]
    assert rows(con, "select count(*) from marts.decision_waits where decided_by_team = 'exec'")[0][0] > 0
    week = rows(con, "select iso_week, throughput, cycle_p50_s from marts.team_weekly where week_start = '2024-03-04'")
    assert week[0][0] == "2024-W10" and week[0][1] > 0 and week[0][2] > 0
