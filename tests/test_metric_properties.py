"""Properties of the metric logic for any event sequence (hypothesis), through the real load and SQL models.

Generated Jira histories (status, assignee, flag and dependency-link changes, at any moment, in any offset)
and pull request timelines (review requests, reviews, drafts, labels, merges, closes) go through the same
landing pages -> load -> models path as tests/test_warehouse_rules.py, under a generated team calendar. For
every item: business time <= calendar time; the union of blocked pieces <= the cycle; handoffs <= assignee
changes; its visits never overlap; and the same input builds the same marts.

Each example builds a whole warehouse (seconds), so the example counts are small and every example carries
many items; `deadline=None` because a build's time is the machine's, not the property's.
"""

from __future__ import annotations

import tempfile
from datetime import date, time, timedelta
from pathlib import Path

import duckdb
import hypothesis.strategies as hs
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from pipelines.config import Calendar, Config, Team
from tests.test_warehouse_rules import AS_OF, MON, STATUSES, Org, asg, build, ev, flag, link, st

PEOPLE = ["ana", "bob", "cat", None]
STATUS_NAMES = [name for name, _ in STATUSES.values()]
REPO = "acme/payments-api"
STEPS = [timedelta(0), timedelta(minutes=1), timedelta(minutes=47), timedelta(hours=5), timedelta(hours=16),
         timedelta(days=1), timedelta(days=2, hours=3), timedelta(days=6)]
# The same examples on every run (no flaky CI), no example database in the checkout, and no shrinking: it
# may take many builds; a failure prints its whole (small) example instead.
SETTINGS = {"deadline": None, "database": None, "derandomize": True,
            "phases": (Phase.explicit, Phase.generate),
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@hs.composite
def calendars(draw) -> Config:
    """The PAY team's calendar: any of a few zones (half-hour offsets, DST inside the period), hours, days."""
    start = draw(hs.sampled_from([time(0), time(8, 30), time(9), time(22)]))
    end = draw(hs.sampled_from([t for t in (time(12), time(17), time(23, 30)) if t > start] or [time(23, 59)]))
    cal = Calendar(timezone=draw(hs.sampled_from(["UTC", "America/St_Johns", "Europe/Berlin", "Pacific/Auckland"])),
                   workdays=draw(hs.lists(hs.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                                          min_size=1, max_size=7, unique=True)),
                   hours=(start, end), holidays=draw(hs.lists(hs.dates(date(2024, 3, 1), date(2024, 4, 30)),
                                                              max_size=3, unique=True)))
    return Config(teams=[Team(key="pay", calendar="work", jira_projects=["PAY"],
                              github_repositories=[REPO])], calendars={"work": cal})


@hs.composite
def jira_issue(draw, key: str, others: list[str]) -> dict:
    """One issue's history: consistent from/to values, several changes at one instant allowed."""
    created = MON + timedelta(minutes=draw(hs.integers(0, 6 * 24 * 60)))
    status, assignee = draw(hs.sampled_from(["To Do", "In Progress"])), draw(hs.sampled_from(PEOPLE))
    out = {"key": key, "created": created, "status0": status, "assignee0": assignee,
           "offset_h": draw(hs.sampled_from([0, -5, 3])), "changes": []}
    flagged, linked, t = False, set(), created
    for _ in range(draw(hs.integers(0, 10))):
        t += draw(hs.sampled_from(STEPS))
        items = []
        for kind in draw(hs.lists(hs.sampled_from(["status", "assignee", "flag", "link"]), min_size=1, max_size=2,
                                  unique=True)):
            if kind == "status":
                new = draw(hs.sampled_from([s for s in STATUS_NAMES if s != status]))
                items.append(st(status, new))
                status = new
            elif kind == "assignee":
                new = draw(hs.sampled_from([p for p in PEOPLE if p != assignee]))
                items.append(asg(assignee, new))
                assignee = new
            elif kind == "flag":
                flagged = not flagged
                items.append(flag(flagged))
            elif others:
                other = draw(hs.sampled_from(others))
                items.append(link(other, add=other not in linked))
                linked ^= {other}
        out["changes"].append((t, draw(hs.sampled_from(["ana", "bob", "boss"])), items))
    out["flagged"] = flagged
    return out


@hs.composite
def pull_request(draw, number: int) -> dict:
    """A timeline: review requests (people, a team), reviews, draft toggles, labels, then maybe merge/close."""
    created = MON + timedelta(minutes=draw(hs.integers(0, 6 * 24 * 60)))
    t, events, draft = created, [], draw(hs.booleans())
    for _ in range(draw(hs.integers(0, 8))):
        t += draw(hs.sampled_from(STEPS))
        who = draw(hs.sampled_from(["bob", "cat"]))
        kind = draw(hs.sampled_from(["request", "request_team", "review", "remove", "draft", "label", "unlabel"]))
        if kind == "request":
            events.append(ev("review_requested", t, "ana", reviewer=who))
        elif kind == "request_team":
            events.append(ev("review_requested", t, "ana", team="payments"))
        elif kind == "remove":
            events.append(ev("review_request_removed", t, "ana", reviewer=who))
        elif kind == "review":
            events.append(ev("reviewed", t, who, state=draw(hs.sampled_from(["approved", "changes_requested",
                                                                               "commented"]))))
        elif kind == "draft":
            events.append(ev("ready_for_review" if draft else "convert_to_draft", t, "ana"))
            draft = not draft
        else:
            events.append(ev("labeled" if kind == "label" else "unlabeled", t, "ana", label="blocked"))
    end = draw(hs.sampled_from(["open", "merged", "closed"]))
    t += draw(hs.sampled_from(STEPS))
    if end == "merged":
        events += [ev("merged", t, "ana"), ev("closed", t, "ana")]
    elif end == "closed":
        events.append(ev("closed", t, "ana"))
    return {"number": number, "created": created, "events": events, "draft": draft and end == "open"}


@hs.composite
def organisations(draw) -> tuple[Config, list[dict], list[dict]]:
    keys = [f"PAY-{i}" for i in range(1, draw(hs.integers(1, 6)) + 1)]
    issues = [draw(jira_issue(k, [o for o in keys if o != k])) for k in keys]
    pulls = [draw(pull_request(n)) for n in range(1, draw(hs.integers(0, 3)) + 1)]
    return draw(calendars()), issues, pulls


def warehouse(root: Path, cfg: Config, issues: list[dict], pulls: list[dict]) -> duckdb.DuckDBPyConnection:
    org = Org(root / "landing")
    for i in issues:
        org.issue(i["key"], i["created"], i["changes"], status0=i["status0"], assignee0=i["assignee0"],
                  offset_h=i["offset_h"], flagged=i["flagged"])
    for p in pulls:
        org.pr(REPO, p["number"], "ana", p["created"], p["events"], draft=p["draft"])
    return build(root, org, cfg, AS_OF)


def one(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


@pytest.mark.slow
@settings(max_examples=10, **SETTINGS)
@given(organisations())
def test_metric_invariants_hold_for_any_history(org: tuple[Config, list[dict], list[dict]]) -> None:
    cfg, issues, pulls = org
    with tempfile.TemporaryDirectory() as d:
        con = warehouse(Path(d), cfg, issues, pulls)
        try:
            assert one(con, "select count(*) from marts.item_flow") == [(len(issues) + len(pulls),)]
            # business time <= calendar time, wherever both are measured
            for table, business, calendar in (("core.status_intervals", "business_s", "calendar_s"),
                                              ("marts.wait_intervals", "business_s", "calendar_s"),
                                              ("marts.approval_waits", "business_s", "calendar_s"),
                                              ("marts.item_flow", "cycle_business_s", "cycle_s"),
                                              ("marts.item_flow", "approval_wait_business_s", "approval_wait_s"),
                                              ("marts.item_flow", "decision_wait_business_s", "decision_wait_s")):
                bad = one(con, f"select item_id, {business}, {calendar} from {table} "
                               f"where {business} < 0 or {business} > {calendar} + 1e-6")
                assert not bad, (table, business, bad)
            # the union of blocked pieces fits in the cycle
            assert not one(con, "select item_id, blocked_s, cycle_s from marts.item_flow "
                                "where blocked_s > coalesce(cycle_s, 0) + 1e-6 or blocked_s < 0")
            # handoffs never outnumber the assignee changes that make them (Jira)
            changes = {i["key"]: sum(it["field"] == "assignee" for _, _, items in i["changes"] for it in items)
                       for i in issues}
            for item_id, handoffs in one(con, "select item_id, handoffs from marts.item_flow where source = 'jira'"):
                assert handoffs <= changes[item_id.removeprefix("jira:")], (item_id, handoffs)
            assert one(con, "select count(*) from marts.handoffs where item_id like 'jira:%'") == [
                (sum(h for _, h in one(con, "select item_id, handoffs from marts.item_flow where source = 'jira'")),)]
            # one item's visits never overlap: each is a forward span ending where the next begins
            assert not one(con, """
                select item_id, visit_no from (
                    select item_id, visit_no, entered_at, exited_at,
                        lag(exited_at) over (partition by item_id order by visit_no) as prev_exited_at
                    from core.status_intervals)
                where exited_at < entered_at or prev_exited_at > entered_at""")
        finally:
            con.close()


def marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    tables = [t for (t,) in one(con, "select table_name from information_schema.tables "
                                     "where table_schema = 'marts' order by table_name")]
    return {t: sorted(one(con, f"select * from marts.{t}"), key=repr) for t in tables}


@pytest.mark.slow
@settings(max_examples=3, **SETTINGS)
@given(organisations())
def test_the_same_input_builds_the_same_marts(org: tuple[Config, list[dict], list[dict]]) -> None:
    cfg, issues, pulls = org
    built = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as d:
            con = warehouse(Path(d), cfg, issues, pulls)
            built.append(marts(con))
            con.close()
    assert built[0] == built[1]
    assert built[0]["item_flow"]
