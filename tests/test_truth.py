"""The truth oracle on hand-built tiny organisations, one rule per test, plus business time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox import truth
from sandbox.calendar import business_seconds
from sandbox.model import (
    Calendar,
    GhEvent,
    GhIssue,
    GhPull,
    GhRepo,
    JiraChangeItem,
    JiraHistory,
    JiraIssue,
    JiraLink,
    JiraProject,
    JiraStatus,
    JsmApproval,
    Person,
    Store,
    Team,
    TeamMembership,
)

T0 = datetime(2024, 3, 4, 9, tzinfo=UTC)  # a Monday
BERLIN = Calendar(tz="Europe/Berlin", holidays=("2024-12-25", "2024-12-26"))
UTC_CAL = Calendar(tz="UTC")


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# ---------------------------------------------------------------- builder

def st(frm: str, to: str) -> JiraChangeItem:
    return JiraChangeItem("status", "jira", "status", frm, frm, to, to)


def asg(frm: str | None, to: str | None) -> JiraChangeItem:
    return JiraChangeItem("assignee", "jira", "assignee", frm, frm, to, to)


def flag(on: bool) -> JiraChangeItem:
    return JiraChangeItem("Flagged", "custom", "customfield_10021", None, "" if on else "Impediment",
                          None, "Impediment" if on else "")


def link(key: str, added: bool = True) -> JiraChangeItem:
    text = f"This issue is blocked by {key}"
    return JiraChangeItem("Link", "jira", None, None if added else key, None if added else text,
                          key if added else None, text if added else None)


def fld(name: str) -> JiraChangeItem:
    return JiraChangeItem(name, "jira", name.lower(), "a", "a", "b", "b")


class Org:
    """A tiny organisation: team pay (Berlin) with ana and ben, team web (UTC) with cai, and a bot."""

    def __init__(self) -> None:
        self.hid = 1000
        self.eid = 5000
        self.teams = {"pay": Team("pay", "Payments", BERLIN, "pay-team"),
                      "web": Team("web", "Web", UTC_CAL, "web-team")}
        self.people = {pid: Person(pid, pid, f"{pid}@x", team, "UTC", f"acc-{pid}", f"JIRAUSER{i}", pid,
                                   f"gh-{pid}", bot=pid.endswith("bot"))
                       for i, (pid, team) in enumerate([("ana", "pay"), ("ben", "pay"), ("cai", "web"),
                                                        ("ci-bot", "web")])}
        self.people["ci-bot"].login = "ci[bot]"
        self.memberships = [TeamMembership("ana", "pay", None, None), TeamMembership("ben", "pay", None, None),
                            TeamMembership("cai", "web", None, None)]
        names = [("1", "To Do", "new", "backlog"), ("2", "In Progress", "indeterminate", "active"),
                 ("3", "In Review", "indeterminate", "approval"), ("4", "Blocked", "indeterminate", "blocked"),
                 ("5", "Done", "done", "done"), ("6", "Needs Decision", "indeterminate", "decision"),
                 ("7", "Ready for QA", "indeterminate", "queue"), ("8", "Won't Do", "done", "done")]
        self.statuses = {i: JiraStatus(i, n, c, s) for i, n, c, s in names}
        self.issues: list[JiraIssue] = []
        self.pulls: list[GhPull] = []
        self.gh_issues: list[GhIssue] = []

    def issue(self, key: str, changes=(), *, status: str = "1", assignee: str | None = None,
              created: datetime = T0, links=(), flagged: bool = False, approvals=(), team=None) -> JiraIssue:
        """changes: (hours, author, [items]) or (hours, author, [items], history_id)."""
        hist = []
        for c in changes:
            self.hid += 1
            hist.append(JiraHistory(c[3] if len(c) > 3 else self.hid, c[1], h(c[0]), list(c[2])))
        for hi in sorted(hist, key=lambda x: (x.created, x.id)):
            for it in sorted(hi.items, key=lambda it: it.field != "status"):
                if it.field == "status":
                    status = it.to
                if it.field == "assignee":
                    assignee = it.to
        iss = JiraIssue(len(self.issues) + 1, key, key.split("-")[0], "Story", key, created, created, "ana",
                        assignee, status, "Medium", None, None, [], None, team, flagged, None, [],
                        list(links), hist, list(approvals))
        self.issues.append(iss)
        return iss

    def ev(self, hours: float, event: str, actor: str, **kw) -> GhEvent:
        self.eid += 1
        return GhEvent(kw.pop("id", self.eid), event, actor, h(hours), **kw)

    def pull(self, number: int, events, *, author: str = "gh-ana", draft: bool = False, labels=()) -> GhPull:
        merged = next((e for e in events if e.event == "merged"), None)
        closed = any(e.event == "closed" for e in events)
        pr = GhPull("acme/api", number, number, f"PR{number}", f"pr {number}", author, T0, T0,
                    merged.created_at if merged else None, merged.created_at if merged else None,
                    merged.actor if merged else None, draft, "closed" if closed or merged else "open",
                    list(labels), [], list(events))
        self.pulls.append(pr)
        return pr

    def gh_issue(self, number: int, events, *, labels=(), assignees=(), state="open") -> GhIssue:
        gi = GhIssue("acme/api", number, number, f"I{number}", "issue", "gh-ana", T0, T0, None, state, None,
                     list(labels), list(assignees), list(events))
        self.gh_issues.append(gi)
        return gi

    def store(self, now: datetime | None = None) -> Store:
        return Store(1, "tiny", now or h(24 * 7), self.teams, self.people, self.memberships, self.statuses,
                     {"PAY": JiraProject("10", "PAY", "Payments", "software", "pay", "ana", list(self.statuses)),
                      "WEB": JiraProject("11", "WEB", "Web", "software", "web", "cai", list(self.statuses))},
                     self.issues, ["acme"],
                     [GhRepo(1, "R1", "acme", "api", "web", False, T0 - timedelta(days=100))],
                     {"acme/pay-team": ["gh-ana", "gh-ben"], "acme/web-team": ["gh-cai"]},
                     self.pulls, self.gh_issues, "ana", "gh-ana")

    def truth(self, **kw) -> truth.Truth:
        return truth.compute(self.store(), **kw)


ANA, BEN, CAI = "jira:acc-ana", "jira:acc-ben", "jira:acc-cai"


# ---------------------------------------------------------------- Jira handoffs

def test_unassigned_gap_is_one_handoff_and_unowned_time():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "2"), asg(None, "ana")]), (2, "ana", [asg("ana", None)]),
                      (5, "ben", [asg(None, "ben")])])
    t = o.truth()
    [hand] = t.handoffs["jira:PAY-1"]
    assert (hand.handed_off_at, hand.from_owner, hand.to_owner, hand.kind) == (h(5), ANA, BEN, "reassignment")
    assert not hand.is_team_handoff and not hand.is_bounce
    assert t.item_flow["jira:PAY-1"].unowned_active_s == 3 * 3600


def test_first_assignment_and_trailing_unassignment_are_not_handoffs():
    o = Org()
    o.issue("PAY-1", [(1, "ana", [asg(None, "ana")]), (2, "ana", [st("1", "2")]), (3, "ana", [asg("ana", None)])])
    o.issue("PAY-2", [(1, "ana", [asg(None, "ana")]), (2, "ana", [asg("ana", None)]), (3, "ana", [asg(None, "ana")])])
    t = o.truth()
    assert t.handoffs["jira:PAY-1"] == [] and t.handoffs["jira:PAY-2"] == []
    # PAY-1 is active and unowned from hour 3 to now.
    assert t.item_flow["jira:PAY-1"].unowned_active_s == (t.as_of - h(3)).total_seconds()
    # PAY-2's gap is in backlog: not unowned active time.
    assert t.item_flow["jira:PAY-2"].unowned_active_s == 0


def test_changes_while_done_are_ignored_including_same_history():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana"), st("1", "2")]),
                      (1, "ana", [asg("ana", "ben"), st("2", "5")]),  # done + reassign in one history: ignored
                      (2, "ana", [asg("ben", "cai")])])  # while done: ignored
    o.issue("PAY-2", [(0, "ana", [asg(None, "ana"), st("1", "2")]), (1, "ana", [st("2", "5")]),
                      (2, "ben", [asg("ana", "ben"), st("5", "2")])])  # reopen + reassign: counted
    t = o.truth()
    assert t.handoffs["jira:PAY-1"] == []
    assert [(x.from_owner, x.to_owner, x.handed_off_at) for x in t.handoffs["jira:PAY-2"]] == [(ANA, BEN, h(2))]
    assert [r.kind for r in t.reversals["jira:PAY-2"]] == ["reopened"]


def test_bounce_and_team_handoff():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana"), st("1", "2")]), (1, "ana", [asg("ana", "cai")]),
                      (2, "cai", [asg("cai", "ana")]), (3, "ana", [asg("ana", "ben")])])
    hs = o.truth().handoffs["jira:PAY-1"]
    assert [(x.from_team, x.to_team, x.is_team_handoff, x.is_bounce) for x in hs] == [
        ("pay", "web", True, False), ("web", "pay", True, True), ("pay", "pay", False, False)]
    f = o.truth().item_flow["jira:PAY-1"]
    assert (f.handoffs, f.team_handoffs, f.bounces) == (3, 2, 1)


def test_team_membership_validity_and_team_field_fallback():
    o = Org()
    o.memberships[1] = TeamMembership("ben", "pay", None, h(10))
    o.memberships.append(TeamMembership("ben", "web", h(10), None))
    o.people["dan"] = Person("dan", "dan", "d@x", "web", "UTC", "acc-dan", "JIRAUSER9", "dan", "gh-dan")
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana")]), (5, "ana", [asg("ana", "ben")]),
                      (11, "ana", [asg("ben", "ana")]), (12, "ana", [asg("ana", "ben")]),
                      (13, "ana", [asg("ben", "dan")])], team="web")
    hs = o.truth().handoffs["jira:PAY-1"]
    assert [(x.from_team, x.to_team) for x in hs] == [("pay", "pay"), ("web", "pay"), ("pay", "web"),
                                                       ("web", "web")]  # dan: no membership -> Team field


def test_two_changes_at_the_same_instant_are_ordered_by_id():
    o = Org()
    # Listed in the wrong order on purpose: id 2 (ana -> ben) comes after id 1 (none -> ana).
    o.issue("PAY-1", [(1, "ana", [asg("ana", "ben")], 2), (1, "ana", [asg(None, "ana")], 1),
                      (1, "ana", [st("1", "2")], 3), (1, "ana", [st("2", "7")], 4)])
    t = o.truth()
    [hand] = t.handoffs["jira:PAY-1"]
    assert (hand.from_owner, hand.to_owner) == (ANA, BEN)
    ivs = t.status_intervals["jira:PAY-1"]
    assert [(i.status, i.state, i.calendar_s) for i in ivs][:2] == [("To Do", "backlog", 3600),
                                                                    ("In Progress", "active", 0)]
    assert ivs[-1].status == "Ready for QA" and ivs[-1].is_open and ivs[-1].owner_id == BEN


def test_datacenter_ids_use_user_keys():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana")]), (1, "ana", [asg("ana", "ben")])])
    [hand] = o.truth(jira_deployment="datacenter").handoffs["jira:PAY-1"]
    assert (hand.from_owner, hand.to_owner) == ("jira:JIRAUSER0", "jira:JIRAUSER1")


# ---------------------------------------------------------------- Jira approvals, decisions, reversals

def test_jira_approval_visits_rounds_and_reapproval():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana"), st("1", "2")]), (1, "ana", [st("2", "3")]),
                      (2, "ben", [st("3", "2")]),  # rejected (back to active)
                      (3, "ana", [st("2", "3")]), (4, "ben", [st("3", "7")]),  # approved (queue)
                      (5, "ana", [st("7", "3")]), (6, "cai", [st("3", "8")])])  # re-approval, then "Won't Do"
    t = o.truth()
    ws = t.approval_waits["jira:PAY-1"]
    assert [(w.requested_at, w.decided_at, w.outcome, w.decided_by, w.requested_of) for w in ws] == [
        (h(1), h(2), "rejected", BEN, ANA), (h(3), h(4), "approved", BEN, ANA), (h(5), h(6), "rejected", CAI, ANA)]
    assert all(w.source_kind == "jira_status" and not w.is_open for w in ws)
    f = t.item_flow["jira:PAY-1"]
    assert (f.approval_requests, f.approval_rounds, f.approval_wait_s) == (3, 2, 3 * 3600)
    assert [r.kind for r in t.reversals["jira:PAY-1"]] == ["reapproval"]
    assert f.finished_at == h(6) and f.cycle_s == 6 * 3600
    o.issue("PAY-2", [(1, "ana", [st("1", "2")]), (2, "ana", [st("2", "5")]), (3, "ana", [st("5", "8")])])
    f2 = o.truth().item_flow["jira:PAY-2"]
    assert (f2.finished_at, f2.cycle_s) == (h(2), 3600)  # Done -> Won't Do is no new entry into done
    assert o.truth().reversals["jira:PAY-2"] == []


def test_jira_open_approval_and_jsm_approval():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "3")])], approvals=[
        JsmApproval("a1", "CAB", h(1), h(3), "approved", [("cai", "approved"), ("ben", "pending")]),
        JsmApproval("a2", "CAB", h(4), None, "pending", [("ben", "pending")])])
    o.issue("PAY-2", [(0, "ana", [st("1", "3")]), (1, "ben", [st("3", "2")])], approvals=[
        JsmApproval("a3", "CAB", h(2), h(3), "approved", [("cai", "approved")])])
    truth = o.truth()
    # the open approval-state visit is overlapped by the JSM approvals: they are the requests, not it
    ws = truth.approval_waits["jira:PAY-1"]
    assert [w.source_kind for w in ws] == ["jsm", "jsm"]
    assert (ws[0].source_kind, ws[0].requested_of, ws[0].decided_by, ws[0].outcome, ws[0].calendar_s) == (
        "jsm", f"{BEN},{CAI}", CAI, "approved", 7200)
    assert ws[1].is_open and ws[1].outcome is None and ws[1].decided_at is None
    # a visit that no JSM approval overlaps stays a request of its own
    assert [(w.source_kind, w.outcome) for w in truth.approval_waits["jira:PAY-2"]] == [
        ("jira_status", "rejected"), ("jsm", "approved")]
    assert truth.item_flow["jira:PAY-1"].approval_requests == 2


def test_jira_decision_is_remote_when_decider_is_outside_the_team():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "6")]), (2, "cai", [st("6", "2")]), (3, "ana", [st("2", "6")]),
                      (4, "ben", [st("6", "2")]), (5, "ana", [st("2", "6")])])
    ds = o.truth().decision_waits["jira:PAY-1"]
    assert [(d.decided_by, d.decided_by_team, d.owner_team, d.is_remote_decision, d.calendar_s) for d in ds[:2]] == [
        (CAI, "web", "pay", True, 7200), (BEN, "pay", "pay", False, 3600)]
    assert ds[2].is_open and ds[2].decided_by is None and not ds[2].is_remote_decision


def test_reversals_regression_scope_priority():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [fld("Sprint")]), (1, "ana", [st("1", "2")]), (2, "ana", [fld("priority")]),
                      (3, "ana", [fld("Fix Version"), st("2", "7")]), (4, "ana", [st("7", "1")])])
    kinds = [(r.kind, r.at) for r in o.truth().reversals["jira:PAY-1"]]
    assert kinds == [("priority_changed_after_start", h(2)), ("scope_changed_after_start", h(3)),
                     ("status_regression", h(4))]


# ---------------------------------------------------------------- blocked and dependencies

def test_flag_overlapping_blocked_status_counted_once():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "2")]), (1, "ana", [flag(True)]), (2, "ana", [st("2", "4")]),
                      (4, "ana", [st("4", "2")]), (5, "ana", [flag(False)]), (8, "ana", [st("2", "5")])])
    t = o.truth()
    b = t.blocked["jira:PAY-1"]
    assert b.blocked_s == 4 * 3600  # flag 1-5 and status 2-4: union 1-5
    assert sorted(p.cause for p in b.pieces) == ["blocked_status", "flag"]
    f = t.item_flow["jira:PAY-1"]
    assert (f.cycle_s, f.active_s, f.waiting_s) == (8 * 3600, 4 * 3600, 4 * 3600)
    assert f.flow_efficiency == 0.5


def test_flagged_since_creation_and_cut_to_not_done_time():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "2")]), (2, "ana", [st("2", "5")]), (3, "ana", [flag(False)])],
            flagged=False)
    b = o.truth().blocked["jira:PAY-1"]
    assert [(p.cause, p.started_at, p.ended_at) for p in b.pieces] == [("flag", h(0), h(2))]
    assert b.blocked_s == 2 * 3600


def test_dependency_on_an_item_that_is_later_reopened():
    o = Org()
    o.issue("WEB-9", [(0, "cai", [st("1", "2")]), (5, "cai", [st("2", "5")]), (8, "cai", [st("5", "2")]),
                      (10, "cai", [st("2", "5")])])
    o.issue("PAY-1", [(0, "ana", [st("1", "2")]), (1, "ana", [link("WEB-9")]), (20, "ana", [st("2", "5")])])
    b = o.truth().blocked["jira:PAY-1"]
    assert [(p.cause, p.started_at, p.ended_at, p.blocking_item, p.is_cross_team) for p in b.pieces] == [
        ("dependency", h(1), h(5), "jira:WEB-9", True), ("dependency", h(8), h(10), "jira:WEB-9", True)]
    assert b.blocked_s == 6 * 3600


def test_dependency_removed_unknown_and_without_changelog():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "2")]), (1, "ana", [link("NOPE-1")]), (3, "ana", [link("NOPE-1", False)]),
                      (10, "ana", [st("2", "5")])],
            links=[JiraLink("L1", "Blocks", "PAY-2", "PAY-1", T0)])
    o.issue("PAY-2", [(6, "ben", [st("1", "5")])])
    b = o.truth().blocked["jira:PAY-1"]
    assert [(p.started_at, p.ended_at, p.blocking_item) for p in b.pieces] == [
        (h(0), h(6), "jira:PAY-2"), (h(1), h(3), "jira:NOPE-1")]
    assert b.blocked_s == 6 * 3600


def test_blocked_time_before_the_start_is_outside_the_cycle():
    o = Org()
    o.issue("WEB-9", [(4, "cai", [st("1", "5")])])
    o.issue("PAY-1", [(2, "ana", [st("1", "2")]), (6, "ana", [st("2", "5")])],
            links=[JiraLink("L1", "Blocks", "WEB-9", "PAY-1", T0)])
    t = o.truth()
    b, f = t.blocked["jira:PAY-1"], t.item_flow["jira:PAY-1"]
    assert [(p.started_at, p.ended_at) for p in b.pieces] == [(h(0), h(4))]  # the piece keeps its backlog part
    assert (b.blocked_s, f.cycle_s, f.active_s, f.waiting_s) == (2 * 3600, 4 * 3600, 2 * 3600, 2 * 3600)
    never = o.issue("PAY-3", [], flagged=True)
    assert never.histories == [] and o.truth().item_flow["jira:PAY-3"].blocked_s == 0
    assert o.truth().item_flow["jira:PAY-3"].cycle_s is None


# ---------------------------------------------------------------- GitHub pull requests

def test_team_review_request_answered_by_a_member():
    o = Org()
    o.pull(1, [o.ev(1, "review_requested", "gh-ana", requested_team="pay-team"),
               o.ev(3, "reviewed", "gh-ben", review_state="APPROVED", review_body=""),
               o.ev(4, "merged", "gh-ana"), o.ev(4, "closed", "gh-ana")])
    t = o.truth()
    hs = t.handoffs["github:acme/api#1"]
    assert [(x.from_owner, x.to_owner, x.kind, x.is_bounce, x.to_team) for x in hs] == [
        (ANA, "github-team:acme/pay-team", "review_request", False, "pay"), (BEN, ANA, "review_return", True, "pay")]
    [w] = t.approval_waits["github:acme/api#1"]
    assert (w.requested_of, w.decided_by, w.outcome, w.calendar_s) == ("github-team:acme/pay-team", BEN,
                                                                       "approved", 7200)
    states = [(i.state, i.entered_at) for i in t.status_intervals["github:acme/api#1"]]
    assert states == [("active", h(0)), ("approval", h(1)), ("queue", h(3)), ("done", h(4))]
    f = t.item_flow["github:acme/api#1"]
    assert (f.started_at, f.finished_at, f.active_s, f.waiting_s, f.fast_approvals) == (h(0), h(4), 3600, 3 * 3600, 0)
    assert (f.time_to_first_review_s, f.time_to_approval_s) == (3 * 3600, 3 * 3600)


def test_pull_opened_with_a_reviewer_starts_its_wait_at_creation():
    o = Org()
    o.pull(9, [o.ev(0, "review_requested", "gh-ana", requested_reviewer="gh-ben"),
               o.ev(0, "review_requested", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(1, "reviewed", "gh-ben", review_state="COMMENTED", review_body="hm")])
    t = o.truth()
    assert [(i.state, i.entered_at, i.owner_id) for i in t.status_intervals["github:acme/api#9"]] == [
        ("approval", h(0), CAI)]  # cai's request is still open
    ws = t.approval_waits["github:acme/api#9"]
    assert [(w.requested_at, w.requested_of, w.outcome, w.is_open) for w in ws] == [
        (h(0), BEN, "commented", False), (h(0), CAI, None, True)]
    assert [x.kind for x in t.handoffs["github:acme/api#9"]] == ["review_request", "review_request", "review_return"]


def test_withdrawn_request_and_review_without_request():
    o = Org()
    o.pull(2, [o.ev(1, "review_requested", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(2, "review_request_removed", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(3, "reviewed", "gh-cai", review_state="COMMENTED")])
    t = o.truth()
    [w] = t.approval_waits["github:acme/api#2"]
    assert (w.outcome, w.decided_by, w.decided_at) == ("withdrawn", ANA, h(2))
    assert [x.kind for x in t.handoffs["github:acme/api#2"]] == ["review_request"]  # the comment closes nothing


def test_changes_requested_then_approval_is_a_second_round_and_reapproval():
    o = Org()
    o.pull(3, [o.ev(0, "review_requested", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(1, "reviewed", "gh-cai", review_state="CHANGES_REQUESTED"),
               o.ev(2, "review_requested", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(2.02, "reviewed", "gh-cai", review_state="APPROVED", review_body=""),
               o.ev(3, "review_requested", "gh-ana", requested_reviewer="gh-ben"),
               o.ev(4, "closed", "gh-cai")])
    t = o.truth()
    ws = t.approval_waits["github:acme/api#3"]
    assert [w.outcome for w in ws] == ["changes_requested", "approved", "closed_without_review"]
    f = t.item_flow["github:acme/api#3"]
    assert (f.approval_rounds, f.fast_approvals, f.bounces, f.handoffs) == (2, 1, 3, 5)
    assert f.time_to_first_review_s == 3600 and f.time_to_approval_s == pytest.approx(2.02 * 3600)
    assert [r.kind for r in t.reversals["github:acme/api#3"]] == ["reapproval"]
    states = [i.state for i in t.status_intervals["github:acme/api#3"]]
    assert states == ["approval", "active", "approval", "queue", "approval", "done"]


def test_bot_actions_are_ignored_and_dismissed_review_keeps_its_state():
    o = Org()
    o.pull(4, [o.ev(1, "review_requested", "ci[bot]", requested_reviewer="gh-cai"),
               o.ev(2, "review_requested", "gh-ana", requested_reviewer="gh-cai"),
               o.ev(3, "reviewed", "ci[bot]", review_state="APPROVED"),
               o.ev(4, "reviewed", "gh-cai", review_state="DISMISSED", id=77),
               o.ev(5, "review_dismissed", "gh-ana", dismissed_review_id=77, dismissed_state="APPROVED"),
               o.ev(6, "labeled", "ci[bot]", label="needs-decision")])
    t = o.truth()
    [w] = t.approval_waits["github:acme/api#4"]
    assert (w.requested_at, w.decided_at, w.decided_by, w.outcome) == (h(2), h(4), CAI, "approved")
    assert [(x.from_owner, x.to_owner) for x in t.handoffs["github:acme/api#4"]] == [(ANA, CAI), (CAI, ANA)]
    assert t.decision_waits["github:acme/api#4"] == []
    assert [r.kind for r in t.reversals["github:acme/api#4"]] == ["approval_dismissed"]
    f = t.item_flow["github:acme/api#4"]
    assert (f.time_to_first_review_s, f.time_to_approval_s) == (4 * 3600, 4 * 3600)  # the bot's approval is no review
    states = [i.state for i in t.status_intervals["github:acme/api#4"]]
    assert states == ["active", "approval", "queue", "active"]  # dismissal: no approval stands


def test_merged_without_review_draft_and_reopen():
    o = Org()
    o.pull(5, [o.ev(1, "ready_for_review", "gh-ana"), o.ev(2, "review_requested", "gh-ana", requested_team="web-team"),
               o.ev(3, "closed", "gh-ana"), o.ev(4, "reopened", "gh-ana"),
               o.ev(5, "review_requested", "gh-ana", requested_team="web-team"), o.ev(6, "merged", "gh-cai")],
           draft=False)
    t = o.truth()
    ws = t.approval_waits["github:acme/api#5"]
    assert [(w.outcome, w.decided_by) for w in ws] == [("closed_without_review", ANA), ("merged_without_review", CAI)]
    assert [h_.is_bounce for h_ in t.handoffs["github:acme/api#5"]] == [False, True]
    assert [r.kind for r in t.reversals["github:acme/api#5"]] == ["reopened"]
    f = t.item_flow["github:acme/api#5"]
    assert (f.started_at, f.finished_at) == (h(0), h(6))
    assert (f.time_to_first_review_s, f.time_to_approval_s) == (None, None)


def test_github_decision_labels_and_issue_states():
    o = Org()
    o.gh_issue(7, [o.ev(1, "assigned", "gh-ana", assignee="gh-ana"), o.ev(2, "labeled", "gh-ana", label="needs-decision"),
                   o.ev(4, "unlabeled", "gh-cai", label="needs-decision"), o.ev(5, "labeled", "gh-ana", label="blocked"),
                   o.ev(6, "labeled", "gh-ana", label="needs-discussion"), o.ev(7, "closed", "gh-ben"),
                   o.ev(8, "reopened", "gh-ben")], labels=["blocked", "needs-discussion"], assignees=["gh-ana"])
    t = o.truth()
    iid = "github:acme/api#7"
    ds = t.decision_waits[iid]
    assert [(d.requested_at, d.decided_at, d.decided_by, d.outcome, d.is_remote_decision) for d in ds] == [
        (h(2), h(4), CAI, "decided", False), (h(6), h(7), BEN, "closed", True)]  # repo team is web
    states = [(i.state, i.entered_at) for i in t.status_intervals[iid]]
    assert states == [("backlog", h(0)), ("active", h(1)), ("decision", h(2)), ("active", h(4)),
                      ("blocked", h(5)), ("decision", h(6)), ("done", h(7)), ("decision", h(8))]
    assert t.blocked[iid].blocked_s == 3600  # the latest state label wins: needs-discussion over blocked
    assert [r.kind for r in t.reversals[iid]] == ["reopened"]


# ---------------------------------------------------------------- as_of, business time of rows, JSON

def test_as_of_cuts_open_intervals_and_ignores_later_events():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "3")]), (50, "ben", [st("3", "5")])])
    t = o.truth(as_of=h(6))
    [w] = t.approval_waits["jira:PAY-1"]
    assert w.is_open and w.calendar_s == 6 * 3600
    # Berlin calendar, Monday 10:00-16:00 local (09:00-15:00 UTC): 6 business hours.
    assert w.business_s == 6 * 3600
    ivs = t.status_intervals["jira:PAY-1"]
    assert [i.calendar_s for i in ivs] == [0, 6 * 3600]  # a zero-length To Do visit at creation, then review
    iv = ivs[-1]
    assert iv.status == "In Review" and iv.is_open and iv.exited_at == h(6)


def test_to_json_is_serialisable_with_utc_timestamps():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [asg(None, "ana"), st("1", "2")]), (1, "ana", [asg("ana", "ben")])])
    data = json.loads(json.dumps(truth.to_json(o.truth())))
    item = data["items"]["jira:PAY-1"]
    assert item["handoffs"][0]["handed_off_at"] == "2024-03-04T10:00:00Z"
    assert item["flow"]["handoffs"] == 1 and item["team"] == "pay"


# ---------------------------------------------------------------- business time

def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_business_friday_afternoon_to_monday_morning_is_two_hours():
    assert business_seconds(utc(2024, 3, 8, 16), utc(2024, 3, 11, 10), UTC_CAL) == 2 * 3600
    assert business_seconds(utc(2024, 3, 8, 16), utc(2024, 3, 11, 10), None) == 2 * 3600


@pytest.mark.parametrize("start,end,expected", [
    (utc(2024, 3, 4, 7), utc(2024, 3, 4, 8), 0),  # before hours
    (utc(2024, 3, 4, 18), utc(2024, 3, 5, 8), 0),  # overnight
    (utc(2024, 3, 4, 7), utc(2024, 3, 4, 20), 8 * 3600),  # whole day from outside hours
    (utc(2024, 3, 9, 10), utc(2024, 3, 10, 16), 0),  # weekend
    (utc(2024, 3, 4, 12), utc(2024, 3, 4, 12), 0),  # zero span
    (utc(2024, 3, 5, 12), utc(2024, 3, 4, 12), 0),  # negative span
    (utc(2024, 3, 4, 0), utc(2024, 3, 18, 0), 10 * 8 * 3600),  # two whole weeks
    (utc(2024, 1, 1, 0), utc(2025, 1, 1, 0), 262 * 8 * 3600),  # 2024 has 262 weekdays
])
def test_business_spans_utc(start, end, expected):
    assert business_seconds(start, end, UTC_CAL) == expected


def test_business_across_dst_in_berlin():
    # Spring forward on Sunday 2024-03-31: Friday 09:00 CET is 08:00 UTC, Monday 09:00 CEST is 07:00 UTC.
    assert business_seconds(utc(2024, 3, 29, 8), utc(2024, 4, 1, 8), BERLIN) == 9 * 3600
    assert business_seconds(utc(2024, 3, 29, 8), utc(2024, 4, 1, 7), BERLIN) == 8 * 3600
    # Fall back on Sunday 2024-10-27: Friday 17:00 CEST = 15:00 UTC, Monday 09:00 CET = 08:00 UTC.
    assert business_seconds(utc(2024, 10, 25, 14), utc(2024, 10, 28, 9), BERLIN) == 2 * 3600
    assert business_seconds(utc(2024, 10, 25, 15), utc(2024, 10, 28, 8), BERLIN) == 0
    # A whole week spanning the change still has five 8-hour days.
    assert business_seconds(utc(2024, 10, 21, 0), utc(2024, 10, 28, 0), BERLIN) == 40 * 3600
    assert business_seconds(utc(2024, 3, 25, 0), utc(2024, 4, 1, 0), BERLIN) == 40 * 3600


def test_business_holidays_and_offsets_irrelevant():
    # 24-26 Dec 2024 (Tue-Thu) in Berlin: the 25th and 26th are holidays; the 24th is a working day.
    assert business_seconds(utc(2024, 12, 24, 0), utc(2024, 12, 27, 0), BERLIN) == 8 * 3600
    # The same instant written with -0500 and +0800 offsets counts the same.
    from datetime import timezone
    a = datetime(2024, 3, 8, 11, tzinfo=timezone(timedelta(hours=-5)))  # 16:00 UTC
    b = datetime(2024, 3, 11, 18, tzinfo=timezone(timedelta(hours=8)))  # 10:00 UTC
    assert business_seconds(a, b, UTC_CAL) == 2 * 3600


def test_business_custom_workdays_and_hours():
    cal = Calendar(tz="America/New_York", workdays=(6, 0, 1, 2, 3), start_hour=8, end_hour=24)
    # Sunday 2024-03-10 is the US spring-forward day: 08:00-24:00 EDT = 12:00 UTC - 04:00 UTC next day.
    assert business_seconds(utc(2024, 3, 9, 0), utc(2024, 3, 11, 4), cal) == 16 * 3600
    assert business_seconds(utc(2024, 3, 10, 11), utc(2024, 3, 10, 13), cal) == 3600


# ---------------------------------------------------------------- the generated organisation

def test_generated_store_invariants():
    from sandbox import generator

    store = generator.generate("small", 1)
    t = truth.compute(store)
    assert t.item_flow, "the generator produced no items"
    for iid, f in t.item_flow.items():
        assert f.active_s >= 0 and f.waiting_s >= 0 and f.blocked_s >= 0 and f.unowned_active_s >= 0
        if f.cycle_s is None:
            assert f.blocked_s == 0
        else:
            assert f.cycle_s >= 0 and f.blocked_s <= f.cycle_s + 1e-6
            assert f.active_s + f.waiting_s <= f.cycle_s + 1e-6
        for x in t.handoffs[iid]:
            assert x.from_owner != x.to_owner
        for w in t.approval_waits[iid] + t.decision_waits[iid]:
            assert w.calendar_s >= 0 and 0 <= w.business_s <= w.calendar_s
        for iv in t.status_intervals[iid]:
            assert iv.exited_at >= iv.entered_at and 0 <= iv.business_s <= iv.calendar_s
        nd = [(p.started_at, p.ended_at) for p in t.blocked[iid].pieces]
        assert all(s < e <= t.as_of for s, e in nd)
    assert sum(len(x) for x in t.handoffs.values()) > 0
    json.dumps(truth.to_json(t))
    dc = truth.compute(store, jira_deployment="datacenter")
    assert {iid: f.handoffs for iid, f in dc.item_flow.items()} == {iid: f.handoffs for iid, f in t.item_flow.items()}


def test_a_workflow_migration_moves_the_item_but_reverses_hands_off_and_decides_nothing():
    o = Org()
    o.issue("PAY-1", [(0, "ana", [st("1", "2"), asg(None, "ana")]), (1, "ana", [st("2", "3")]),
                      (2, "admin", [fld("Workflow"), st("3", "1"), asg("ana", "ben")]),
                      (3, "ben", [st("1", "2")]), (4, "ben", [st("2", "3")]),
                      (5, "cai", [st("3", "1"), asg("ben", "ana")])])
    truth = o.truth()
    assert [(r.kind, r.at) for r in truth.reversals["jira:PAY-1"]] == [("status_regression", h(5))]
    assert [(x.from_owner, x.to_owner, x.handed_off_at) for x in truth.handoffs["jira:PAY-1"]] == [(BEN, ANA, h(5))]
    assert [(w.decided_at, w.decided_by) for w in truth.approval_waits["jira:PAY-1"]] == [(h(2), None), (h(5), CAI)]
    assert [v.entered_at for v in truth.status_intervals["jira:PAY-1"]][3:5] == [h(2), h(3)]
