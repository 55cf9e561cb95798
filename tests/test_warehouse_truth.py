"""The marts against the sandbox's truth oracle, item by item, over a generated organisation."""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from pipelines.config import load_config
from pipelines.warehouse import load, run_models
from sandbox.gen_config import config_toml
from sandbox.gen_pages import land_store
from sandbox.generator import generate
from sandbox.truth import compute
from sandbox.truth_links import compute_links


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 0.01
    return a == b


def by_item(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, list[dict]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    out: dict[str, list[dict]] = defaultdict(list)
    for r in cur.fetchall():
        row = dict(zip(cols, r))
        out[row.pop("item_id")].append(row)
    return out


def diff(name: str, wh: dict, truth: dict, fields: list[str]) -> list[str]:
    problems = []
    for iid in sorted(set(wh) | {k for k, v in truth.items() if v}):
        ours, theirs = wh.get(iid, []), truth.get(iid, [])
        if len(ours) != len(theirs):
            problems.append(f"{name} {iid}: {len(ours)} rows, truth {len(theirs)}")
            continue
        for o, t in zip(ours, theirs):
            for f in fields:
                if not same(o[f], getattr(t, f)):
                    problems.append(f"{name} {iid} {f}: {o[f]!r}, truth {getattr(t, f)!r}")
    return problems


@pytest.mark.parametrize(("seed", "deployment", "days_back"), [(1, "cloud", 0), (2, "datacenter", 0), (3, "cloud", 40)])
def test_marts_match_the_truth_oracle(tmp_path: Path, seed: int, deployment: str, days_back: int) -> None:
    """days_back > 0: as_of before the last events (items and changes after it must not count)."""
    store = generate(os.environ.get("FLOWLENS_TRUTH_SCALE", "small"), seed)  # medium: run by hand, ~1 min
    as_of = store.now - timedelta(days=days_back)
    land_store(store, tmp_path / "landing", deployment)
    (tmp_path / "flowlens.toml").write_text(config_toml(store, deployment))
    db = tmp_path / "w.duckdb"
    load(db, tmp_path / "landing")
    run_models(db, load_config(tmp_path / "flowlens.toml"), as_of)
    truth = compute(store, as_of, deployment)
    con = duckdb.connect(str(db), read_only=True)
    flow = {k: v[0] for k, v in by_item(con, "select * from marts.item_flow").items()}
    assert set(flow) == set(truth.item_flow)
    problems = []
    for iid, t in truth.item_flow.items():
        for f in ("kind", "team", "started_at", "finished_at", "cycle_s", "active_s", "waiting_s", "flow_efficiency",
                  "handoffs", "team_handoffs", "bounces", "approval_wait_s", "decision_wait_s", "blocked_s",
                  "reversals", "unowned_active_s", "approval_requests", "approval_rounds", "fast_approvals",
                  "time_to_first_review_s", "time_to_approval_s"):
            if f == "time_to_first_review_s" and t.source == "jira":
                continue  # that of its first pull request: compared by links_problems
            if not same(flow[iid][f], getattr(t, f)):
                problems.append(f"item_flow {iid} {f}: {flow[iid][f]!r}, truth {getattr(t, f)!r}")
    problems += diff("handoffs", by_item(con, "select * from marts.handoffs order by all"), {
        k: sorted(v) for k, v in truth.handoffs.items()},
        ["handed_off_at", "from_owner", "to_owner", "from_team", "to_team", "is_team_handoff", "is_bounce", "kind"])
    problems += diff("approval_waits", by_item(
        con, "select * from marts.approval_waits order by item_id, requested_at, source_kind, event_ord"),
        {k: sorted(v, key=lambda a: (a.requested_at, a.source_kind)) for k, v in truth.approval_waits.items()},
        ["source_kind", "requested_at", "decided_at", "requested_of", "requested_of_team", "decided_by", "outcome",
         "is_open", "calendar_s", "business_s"])
    problems += diff("decision_waits", by_item(
        con, "select * from marts.decision_waits order by item_id, requested_at, event_ord"), truth.decision_waits,
        ["requested_at", "decided_at", "decided_by", "decided_by_team", "owner_team", "is_remote_decision", "outcome",
         "is_open", "calendar_s", "business_s"])
    problems += diff("status_intervals", by_item(con, "select * from core.status_intervals order by item_id, visit_no"),
                     truth.status_intervals,
                     ["status", "state", "entered_at", "exited_at", "owner_id", "is_open", "calendar_s", "business_s"])
    problems += diff("blocked", by_item(con, "select *, blocking_item_id as blocking_item from core.blocked_pieces "
                                             "order by item_id, started_at, cause"),
                     {k: sorted(v.pieces, key=lambda p: (p.started_at, p.cause)) for k, v in truth.blocked.items()},
                     ["cause", "started_at", "ended_at", "blocking_item", "blocking_team", "is_cross_team"])
    problems += diff("waited_on", by_item(
        con, "select * from marts.wait_intervals where cause in ('blocked', 'dependency') "
             "order by item_id, started_at, cause, waited_on nulls first"),
        {k: ledger_blocked(v.pieces) for k, v in truth.blocked.items()},
        ["cause", "started_at", "ended_at", "waited_on", "waited_on_team"])
    problems += diff("reversals", by_item(con, 'select *, reversed_at as "at" from marts.reversals '
                                               "order by item_id, reversed_at, kind"),
                     {k: sorted(v, key=lambda r: (r.at, r.kind)) for k, v in truth.reversals.items()}, ["kind", "at"])
    problems += links_problems(con, store, truth)
    con.close()
    assert problems == [], f"{len(problems)} differences, first: " + "; ".join(problems[:5])


def ledger_blocked(pieces) -> list[SimpleNamespace]:
    """The ledger's blocked and dependency rows from the truth's pieces: pieces of one cause and one waited_on that
    overlap or touch are one wait (docs/metrics-rulings.md), whose team is that of its earliest piece."""
    groups = defaultdict(list)
    for p in pieces:
        groups[("dependency" if p.cause == "dependency" else "blocked", p.waited_on)].append(p)
    out = []
    for (cause, waited_on), ps in groups.items():
        ps.sort(key=lambda p: (p.started_at, p.ended_at))
        for p in ps:
            if out and out[-1].cause == cause and out[-1].waited_on == waited_on and p.started_at <= out[-1].ended_at:
                out[-1].ended_at = max(out[-1].ended_at, p.ended_at)
            else:
                out.append(SimpleNamespace(cause=cause, started_at=p.started_at, ended_at=p.ended_at,
                                           waited_on=waited_on, waited_on_team=p.waited_on_team))
    return sorted(out, key=lambda p: (p.started_at, p.cause, p.waited_on or ""))


def cells(con: duckdb.DuckDBPyConnection, sql: str, width: int) -> dict[tuple, tuple]:
    return {tuple(r[:width]): tuple(r[width:]) for r in con.execute(sql).fetchall()}


def same_cells(name: str, ours: dict, theirs: dict) -> list[str]:
    problems = [f"{name} {k}: missing" for k in theirs if k not in ours]
    problems += [f"{name} {k}: not in truth" for k in ours if k not in theirs]
    problems += [f"{name} {k}: {ours[k]!r}, truth {v!r}" for k, v in theirs.items()
                 if k in ours and not all(same(a, b) for a, b in zip(ours[k], v))]
    return problems


def links_problems(con: duckdb.DuckDBPyConnection, store, truth) -> list[str]:
    """Issue 16's marts against sandbox/truth_links.py: links, review waits across them, who blocks whom, who
    decides for whom, approval chains."""
    lt = compute_links(store, truth)
    assert sum(len(v) for v in lt.links.values()) > 0 and lt.dependency_matrix and lt.decision_rights
    problems = diff("item_links", by_item(con, "select * from marts.item_links order by item_id, linked_item_id"),
                    lt.links, ["linked_item_id", "link_kind", "found_in"])
    problems += diff("review across the link", by_item(
        con, "select * from marts.wait_intervals where cause = 'review' and item_id like 'jira:%' "
             "order by item_id, started_at, waited_on"), lt.review_waits,
        ["started_at", "ended_at", "waited_on", "waited_on_team", "is_open"])
    flow = {k: v[0] for k, v in by_item(con, "select * from marts.item_flow").items()}
    for iid, t in lt.flow.items():
        for f, v in t.items():
            if not same(flow[iid][f], v):
                problems.append(f"item_flow {iid} {f}: {flow[iid][f]!r}, truth {v!r}")
    problems += diff("dependency_waits", by_item(
        con, "select * from marts.dependency_waits order by item_id, started_at, declared, blocking_team"),
        lt.dependency_waits, ["blocked_team", "blocking_team", "declared", "started_at", "ended_at", "calendar_s",
                              "business_s"])
    problems += same_cells("dependency_matrix", cells(
        con, "select week_start, blocking_team, blocked_team, declared, items_blocked, blocked_s, blocked_business_s "
             "from marts.dependency_matrix", 4), lt.dependency_matrix)
    problems += diff("decisions", by_item(con, "select * from marts.decisions order by item_id, kind, requested_at, "
                                               "source_kind, decided_by"), lt.decisions,
                     ["kind", "requested_at", "decided_at", "requested_by", "requester_team", "decided_by",
                      "deciding_team", "owner_team", "is_outside_owner_team", "is_escalation", "calendar_s"])
    problems += same_cells("decision_rights", cells(
        con, "select week_start, owner_team, deciding_team, decisions, latency_p50_s, latency_p85_s, outside_share "
             "from marts.decision_rights", 3), lt.decision_rights)
    weekly = cells(con, "select team, week_start, approval_chain_p85, stacked_approval_share, escalations "
                        "from marts.team_weekly", 2)
    problems += same_cells("team_weekly", {k: v for k, v in weekly.items() if v[0] is not None or v[2]},
                           {k: tuple(v.values()) for k, v in lt.team_weekly.items()})
    return problems


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_deleted_accounts_of_the_sandbox_are_one_person_and_keep_their_events(tmp_path: Path, deployment: str) -> None:
    """The generator's deleted accounts (Jira histories whose author names nobody, GitHub's ghost on reviews) reach
    the marts as deleted:user, every event kept (the truth comparison above checks the figures)."""
    from landing_format import TIMELINE_EVENTS
    from sandbox.model import DELETED_PID, GHOST

    store = generate("small", 1)
    land_store(store, tmp_path / "landing", deployment)
    (tmp_path / "flowlens.toml").write_text(config_toml(store, deployment))
    db = tmp_path / "w.duckdb"
    load(db, tmp_path / "landing")
    run_models(db, load_config(tmp_path / "flowlens.toml"), store.now)
    jira = {(f"jira:{i.key}", h.id) for i in store.jira_issues for h in i.histories if h.author == DELETED_PID}
    ghost = sum(e.actor == GHOST and e.event in TIMELINE_EVENTS for p in store.github_pulls for e in p.events)
    assert jira and ghost
    with duckdb.connect(str(db), read_only=True) as con:
        assert set(con.execute("select distinct item_id, history_id from core.jira_changes_all "
                               "where author_id = 'deleted:user'").fetchall()) == jira
        assert con.execute("select count(*) from core.github_events where actor_id = 'deleted:user'").fetchone() == (
            ghost,)
        assert con.execute("select display_name from core.people where person_id = 'deleted:user'").fetchall() == [
            ("Deleted user",)]
        # their reviews count: some approval or decision of the marts was made by the deleted person
        assert con.execute("select count(*) from marts.decisions where decided_by = 'deleted:user'").fetchone()[0] > 0
