"""Issue 16, one test per rule on hand-built events: Jira issues and their pull requests (item_links), review waits
across the link, who blocks whom (dependency_matrix), who decides for whom (decision_rights) and approval chains."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from landing_format import Landing
from pipelines.config import Config, ConfigError, load_config
from pipelines.warehouse import load, run_models
from tests.test_warehouse_rules import MON, D, H, Org, asg, build, ev, jts, link, rows, st

REPO = "acme/api"
WEB_REPO = "acme/web"


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return Org(tmp_path / "landing")


def pr(org: Org, repo: str, number: int, author: str, events: list[dict], *, branch: str = "feature",
       title: str | None = None, body: str | None = None, created=MON) -> None:
    """A pull request with a branch name, a title and a body (what names the issue)."""
    org.pr(repo, number, author, created, events)
    p = org.pulls[repo][-1]
    p["head"] = {"ref": branch}
    p["title"] = title or f"PR {number}"
    p["body"] = body


def links(con) -> list[tuple]:
    return rows(con, "select item_id, linked_item_id, link_kind, found_in from marts.item_links order by all")


# ------------------------------------------------------------------ item_links


def test_branch_title_and_body_name_the_key_word_bounded_and_case_insensitive(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-123", MON)
    org.issue("PAY-1234", MON)
    org.issue("WEB-7", MON)
    pr(org, REPO, 1, "ana", [], branch="feature/PAY-123-x")
    pr(org, REPO, 2, "ana", [], title="fix pay-123: rounding")
    pr(org, REPO, 3, "ana", [], title="PAY-1234 only", body="see XPAY-123 and PAY-12345")
    pr(org, REPO, 4, "ana", [], branch="pay-123", body="Also closes WEB-7.\nRefs PAY-123")
    con = build(tmp_path, org)
    assert links(con) == [
        ("github:acme/api#1", "jira:PAY-123", "implements", "branch"),
        ("github:acme/api#2", "jira:PAY-123", "implements", "title"),
        ("github:acme/api#3", "jira:PAY-1234", "implements", "title"),
        ("github:acme/api#4", "jira:PAY-123", "implements", "branch,body"),
        ("github:acme/api#4", "jira:WEB-7", "implements", "body"),
        ("jira:PAY-123", "github:acme/api#1", "implemented_by", "branch"),
        ("jira:PAY-123", "github:acme/api#2", "implemented_by", "title"),
        ("jira:PAY-123", "github:acme/api#4", "implemented_by", "branch,body"),
        ("jira:PAY-1234", "github:acme/api#3", "implemented_by", "title"),
        ("jira:WEB-7", "github:acme/api#4", "implemented_by", "body"),
    ]


def remote(org: Org, key: str, *urls: str) -> None:
    """Remote links (web links) of a Jira issue, as GET issue/{key}/remotelink answers."""
    org.remote_links[key] = [{"id": 10000 + n, "self": f"https://x.atlassian.net/rest/api/3/issue/{key}/remotelink/{n}",
                              "application": {}, "relationship": "mentioned in",
                              "object": {"url": u, "title": u.rsplit("/", 1)[-1], "icon": {}, "status": {}}}
                             for n, u in enumerate(urls)]


def test_an_issues_remote_link_to_a_pull_request_links_them(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON)
    org.issue("PAY-2", MON)
    org.issue("WEB-3", MON)
    pr(org, REPO, 1, "ana", [], branch="fix-rounding", title="Fix rounding")  # names no key
    pr(org, REPO, 2, "ana", [], branch="PAY-2-x")
    pr(org, WEB_REPO, 5, "bob", [])
    remote(org, "PAY-1", "https://github.com/acme/api/pull/1")
    remote(org, "PAY-2", "https://github.com/acme/api/pull/2/files", "https://wiki.example.com/PAY-2")
    # GitHub's names ignore case; a GitHub issue, another repository's pull and a pull not synced link nothing
    remote(org, "WEB-3", "https://github.com/ACME/Web/pull/5#discussion_r1", "https://github.com/acme/web/issues/5",
           "https://github.com/other/web/pull/5", "https://github.com/acme/api/pull/99")
    con = build(tmp_path, org)
    assert links(con) == [
        ("github:acme/api#1", "jira:PAY-1", "implements", "remote_link"),
        ("github:acme/api#2", "jira:PAY-2", "implements", "branch,remote_link"),
        ("github:acme/web#5", "jira:WEB-3", "implements", "remote_link"),
        ("jira:PAY-1", "github:acme/api#1", "implemented_by", "remote_link"),
        ("jira:PAY-2", "github:acme/api#2", "implemented_by", "branch,remote_link"),
        ("jira:WEB-3", "github:acme/web#5", "implemented_by", "remote_link"),
    ]
    assert rows(con, "select count(*), count(pull_number) from staging.stg_jira__remote_links") == [(7, 5)]


def test_the_newest_fetch_of_an_issues_remote_links_replaces_the_older_one(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON)
    pr(org, REPO, 1, "ana", [])
    remote(org, "PAY-1", "https://github.com/acme/api/pull/1")
    build(tmp_path, org).close()
    org.remote_links["PAY-1"] = []  # the link was removed; the next extract fetches the issue's links again
    org.land(extract="20240201T000000000000Z-bbbbbbbb")
    db = tmp_path / "w.duckdb"
    load(db, org.root)
    run_models(db, Config(), MON + 40 * D)
    with duckdb.connect(str(db), read_only=True) as con:
        assert links(con) == []


def test_a_key_of_no_synced_issue_links_nothing(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON)
    pr(org, REPO, 1, "ana", [], branch="OPS-1-hotfix", title="UTF-8 and ISO-8601 dates")
    con = build(tmp_path, org)
    assert links(con) == []


def test_a_configured_pattern_links_only_what_it_matches(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON)
    org.issue("WEB-2", MON)
    pr(org, REPO, 1, "ana", [], branch="pay-1/web-2")
    cfg = Config.model_validate({"sources": {"jira": {"issue_key_pattern": r"\bWEB-[0-9]+\b"}}})
    con = build(tmp_path, org, cfg)
    assert links(con) == [("github:acme/api#1", "jira:WEB-2", "implements", "branch"),
                          ("jira:WEB-2", "github:acme/api#1", "implemented_by", "branch")]


def test_a_pattern_re2_cannot_run_is_one_line_naming_the_key(tmp_path: Path) -> None:
    p = tmp_path / "flowlens.toml"
    p.write_text("[sources.jira]\nissue_key_pattern = '(?<=x)PAY-[0-9]+'\n")
    with pytest.raises(ConfigError, match=r"sources\.jira\.issue_key_pattern: lookarounds") as e:
        load_config(p)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ review waits across the link

TEAMS = {"teams": [
    {"key": "pay", "jira_projects": ["PAY"], "members": [{"person": "jira:ana"}, {"person": "github:ana"}]},
    {"key": "web", "jira_projects": ["WEB"], "members": [{"person": "github:bob"}, {"person": "jira:bob"}]},
    {"key": "ops", "members": [{"person": "github:cid"}, {"person": "jira:cid"}]},
]}


def in_review(org: Org, key: str, review_at, done_at) -> None:
    org.issue(key, MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (review_at, "ana", [st("In Progress", "In Review")]),
        (done_at, "ana", [st("In Review", "Done")]),
    ], assignee0="ana")


def test_an_issue_in_review_waits_on_the_reviewer_of_its_pull_request(org: Org, tmp_path: Path) -> None:
    in_review(org, "PAY-1", MON + 4 * H, MON + 7 * H)
    pr(org, WEB_REPO, 1, "ana", [
        ev("review_requested", MON + 3 * H, "ana", reviewer="bob"),
        ev("reviewed", MON + 5 * H, "bob", state="approved"),
        ev("merged", MON + 6 * H, "ana"), ev("closed", MON + 6 * H, "ana"),
    ], branch="feature/PAY-1-rounding", created=MON + H)
    con = build(tmp_path, org, Config.model_validate(TEAMS))
    # the request started before the issue entered review: the issue waits from its entry
    assert rows(con, "select started_at, ended_at, waited_on, waited_on_team, calendar_s, is_open "
                     "from marts.wait_intervals where item_id = 'jira:PAY-1' and cause = 'review'") == [
        (MON + 4 * H, MON + 5 * H, "github:bob", "web", 3600.0, False)]
    assert rows(con, "select linked_pull_requests, review_wait_s, time_to_first_review_s from marts.item_flow "
                     "where item_id = 'jira:PAY-1'") == [(1, 2 * 3600.0, 4 * 3600.0)]


def test_overlapping_review_waits_of_two_pull_requests_count_once(org: Org, tmp_path: Path) -> None:
    in_review(org, "PAY-1", MON + 2 * H, MON + 10 * H)
    pr(org, REPO, 1, "ana", [
        ev("review_requested", MON + 3 * H, "ana", reviewer="bob"),
        ev("reviewed", MON + 6 * H, "bob", state="approved"),
    ], title="PAY-1: part one", created=MON + H)
    pr(org, REPO, 2, "ana", [
        ev("review_requested", MON + 4 * H, "ana", reviewer="cid"),
        ev("review_requested", MON + 5 * H, "ana", reviewer="bob"),
        ev("reviewed", MON + 7 * H, "cid", state="approved"),
        ev("reviewed", MON + 8 * H, "bob", state="approved"),
    ], branch="pay-1-part-two", created=MON + 2 * H)
    con = build(tmp_path, org, Config.model_validate(TEAMS))
    # bob asked by both pull requests, 3-6 and 5-8: one wait 3-8
    assert rows(con, "select started_at, ended_at, waited_on, waited_on_team from marts.wait_intervals "
                     "where item_id = 'jira:PAY-1' and cause = 'review' order by waited_on") == [
        (MON + 3 * H, MON + 8 * H, "github:bob", "web"), (MON + 4 * H, MON + 7 * H, "github:cid", "ops")]
    # union 3-8 = 5 h (the sum of the three waits would be 3 + 3 + 3 = 9 h); first pull request: reviewed 5 h after
    # its creation
    assert rows(con, "select linked_pull_requests, review_wait_s, review_wait_business_s, time_to_first_review_s "
                     "from marts.item_flow where item_id = 'jira:PAY-1'") == [(2, 5 * 3600.0, 5 * 3600.0, 5 * 3600.0)]
    assert rows(con, "select review_wait_s from marts.item_flow where item_id = 'github:acme/api#2'") == [
        (4 * 3600.0,)]


# ------------------------------------------------------------------ who blocks whom

SMALL_OK = {**TEAMS, "privacy": {"min_group_size": 1}}


def test_a_declared_and_an_undeclared_cross_team_block(org: Org, tmp_path: Path) -> None:
    org.issue("WEB-1", MON, [(MON + H, "bob", [st("To Do", "In Progress")]),
                             (MON + 7 * D + 2 * H, "bob", [st("In Progress", "Done")])], assignee0="bob")
    # declared: PAY-1 is blocked by WEB-1 from Monday 11:00 until WEB-1 is done, the next Monday 11:00
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")]),
                             (MON + 2 * H, "ana", [link("WEB-1")])], assignee0="ana")
    # undeclared: PAY-2 handed to bob (web) and waiting in Ready for QA 11:00-15:00; bob then works on it (not
    # a wait) and hands it back at 17:00
    org.issue("PAY-2", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "Ready for QA"), asg("ana", "bob")]),
        (MON + 6 * H, "bob", [st("Ready for QA", "In Progress")]),
        (MON + 8 * H, "bob", [asg("bob", "ana")]),
        (MON + 9 * H, "ana", [st("In Progress", "Done")]),
    ], assignee0="ana")
    con = build(tmp_path, org, Config.model_validate(SMALL_OK))
    assert rows(con, "select item_id, blocked_team, blocking_team, declared, waited_on, calendar_s "
                     "from marts.dependency_waits order by item_id") == [
        ("jira:PAY-1", "pay", "web", True, "jira:WEB-1", 7 * 86400.0),
        ("jira:PAY-2", "pay", "web", False, "jira:bob", 4 * 3600.0)]
    assert rows(con, "select week_start::varchar, blocking_team, blocked_team, declared, items_blocked, blocked_s, "
                     "blocked_business_s from marts.dependency_matrix order by all") == [
        ("2024-03-04", "web", "pay", False, 1, 4 * 3600.0, 4 * 3600.0),
        # Monday 11:00 to the next Monday 00:00: 157 h, of which 6 + 4 x 8 = 38 working
        ("2024-03-04", "web", "pay", True, 1, 157 * 3600.0, 38 * 3600.0),
        ("2024-03-11", "web", "pay", True, 1, 11 * 3600.0, 2 * 3600.0)]
    assert rows(con, "select item_id, undeclared_dependency_s from marts.item_flow where item_id like 'jira:PAY%' "
                     "order by 1") == [("jira:PAY-1", 0.0), ("jira:PAY-2", 4 * 3600.0)]


# ------------------------------------------------------------------ who decides for whom

def test_a_decision_made_by_another_team_and_an_escalation(org: Org, tmp_path: Path) -> None:
    def decided(key: str, asker: str, decider: str) -> None:
        org.issue(key, MON, [(MON + H, asker, [st("To Do", "Needs Decision")]),
                             (MON + 3 * H, decider, [st("Needs Decision", "In Progress")])], assignee0="ana")
    decided("PAY-1", "ana", "cto")  # asked by pay, decided by exec: an escalation
    decided("PAY-2", "ana", "ana")  # decided in the team
    decided("PAY-3", "bob", "bob")  # asked and decided by web: decided outside, not an escalation
    cfg = Config.model_validate({**SMALL_OK, "teams": [*TEAMS["teams"],
                                                       {"key": "exec", "members": [{"person": "jira:cto"}]}]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select item_id, requested_by, requester_team, deciding_team, is_outside_owner_team, "
                     "is_escalation from marts.decisions order by 1") == [
        ("jira:PAY-1", "jira:ana", "pay", "exec", True, True),
        ("jira:PAY-2", "jira:ana", "pay", "pay", False, False),
        ("jira:PAY-3", "jira:bob", "web", "web", True, False)]
    assert rows(con, "select owner_team, deciding_team, decisions, latency_p50_s, latency_p85_s, "
                     "round(outside_share, 4) from marts.decision_rights order by 2") == [
        ("pay", "exec", 1, 7200.0, 7200.0, 0.6667), ("pay", "pay", 1, 7200.0, 7200.0, 0.6667),
        ("pay", "web", 1, 7200.0, 7200.0, 0.6667)]
    assert rows(con, "select escalations, decisions_made from marts.team_weekly where team = 'pay' "
                     "and week_start = '2024-03-04'") == [(1, 3)]


def test_status_approval_jsm_approval_and_pull_request_approval_are_a_chain_of_3(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [
        (MON + H, "ana", [st("To Do", "In Progress")]),
        (MON + 2 * H, "ana", [st("In Progress", "In Review")]),
        (MON + 3 * H, "lead", [st("In Review", "Ready for QA")]),
        (MON + 7 * H, "ana", [st("Ready for QA", "Done")]),
    ], assignee0="ana")
    pr(org, REPO, 1, "ana", [ev("review_requested", MON + 5 * H, "ana", reviewer="bob"),
                             ev("reviewed", MON + 6 * H, "bob", state="approved")],
       branch="PAY-1-checkout", created=MON + 4 * H)
    org.land()
    jsm = Landing(org.root, "jira", "PAY", extract_id="20240101T000000000001Z-bbbbbbbb")
    jsm.write_page("approvals", [{"issueId": "1", "issueKey": "PAY-1", "approval": {
        "id": "77", "name": "CAB", "finalDecision": "approved",
        "createdDate": {"iso8601": jts(MON + 4 * H)}, "completedDate": {"iso8601": jts(MON + 5 * H)},
        "approvers": [{"approver": {"accountId": "cab"}, "approverDecision": "approved"}]}}])
    jsm.finish({"updated": "2024-04-01"})
    org.land = lambda *a, **k: None  # landed above
    con = build(tmp_path, org, Config.model_validate(SMALL_OK))
    assert rows(con, "select source_kind, outcome from marts.approval_waits where item_id = 'jira:PAY-1' "
                     "order by requested_at") == [("jira_status", "approved"), ("jsm", "approved")]
    # 2-3 h, 4-5 h, 5-6 h: three steps, three approvers, three hours of approval wait
    assert rows(con, "select approval_chain_length, approvers, approval_chain_wait_s from marts.item_flow "
                     "where item_id = 'jira:PAY-1'") == [(3, 3, 3 * 3600.0)]
    assert rows(con, "select approval_chain_length, approvers from marts.item_flow "
                     "where item_id = 'github:acme/api#1'") == [(1, 1)]
    assert rows(con, "select approval_chain_p85, stacked_approval_share from marts.team_weekly "
                     "where team = 'pay' and throughput > 0") == [(3.0, 1.0)]
