"""core.people: one row per person, with one display name; deleted accounts are the one person deleted:user."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Config
from tests.test_warehouse_rules import MON, H, Org, build, ev, rows, st

REPO = "acme/payments-api"


@pytest.fixture
def org(tmp_path: Path) -> Org:
    return Org(tmp_path / "landing")


def test_one_row_per_person_with_the_full_name_and_every_alias(org: Org, tmp_path: Path) -> None:
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "In Progress")])])
    org.issues[0]["fields"]["reporter"] = {"accountId": "ana", "displayName": "Ana Souza"}
    org.pr(REPO, 1, "ana-gh", MON, [ev("review_requested", MON + H, "ana-gh", reviewer="bob-gh")])
    cfg = Config.model_validate({"identities": [{"jira": "ana", "github": "ana-gh"}]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select person_id, count(*) from core.people group by all having count(*) > 1") == []
    assert rows(con, "select display_name, aliases, sources from core.people where person_id = 'jira:ana'") == [
        ("Ana Souza", 2, ["github", "jira"])]
    assert rows(con, "select raw_id from core.person_aliases where person_id = 'jira:ana' order by 1") == [
        ("github:ana-gh",), ("jira:ana",)]
    assert rows(con, "select display_name from core.people where person_id = 'github:bob-gh'") == [("bob-gh",)]


def test_deleted_accounts_are_one_person_and_keep_their_events(org: Org, tmp_path: Path) -> None:
    former = {"displayName": "Former user", "active": False}  # a deleted Jira account: no id left
    org.issue("PAY-1", MON, [(MON + H, "ana", [st("To Do", "Needs Decision")]),
                             (MON + 2 * H, "ana", [st("Needs Decision", "In Progress")])])
    org.changelogs[0]["changeHistories"][1]["author"] = former
    org.pr(REPO, 1, "ana", MON, [ev("review_requested", MON + H, "ana", reviewer="ghost"),
                                 ev("reviewed", MON + 2 * H, "ghost", state="approved"),
                                 ev("review_requested", MON + 3 * H, "ana", reviewer="ghost"),
                                 ev("reviewed", MON + 4 * H, "bob", state="approved")])
    org.events[REPO][-1]["event"]["user"] = None  # a review by a deleted account: GitHub answers null
    con = build(tmp_path, org)
    assert rows(con, "select decided_by from marts.decision_waits") == [("deleted:user",)]
    assert rows(con, "select requested_of, decided_by, outcome from marts.approval_waits order by requested_at") == [
        ("deleted:user", "deleted:user", "approved"), ("deleted:user", "deleted:user", "approved")]
    assert rows(con, "select person_id, display_name from core.people where person_id like 'deleted%'") == [
        ("deleted:user", "Deleted user")]
