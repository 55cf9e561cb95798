"""marts.team_headlines and marts.headlines agree with the marts they summarise."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Config
from tests.test_warehouse_rules import REPO, Org, build, mixed_org, org, rows  # noqa: F401 - the org fixture


def test_team_headlines_summarise_item_flow(org: Org, tmp_path: Path) -> None:  # noqa: F811
    mixed_org(org)
    con = build(tmp_path, org)
    per_team = dict(rows(con, "select team, items_finished from marts.team_headlines"))
    finished = dict(rows(con, "select team, count(*) from marts.item_flow where finished_at is not null "
                              "group by team"))
    assert per_team and sum(per_team.values()) == sum(finished.values()) > 0
    assert all(per_team.get(team, 0) == n for team, n in finished.items() if team in per_team)
    (p85,) = rows(con, "select quantile_cont(calendar_s, 0.85) / 3600 from marts.approval_waits "
                       "where not is_open")[0]
    (overall_p85, items) = rows(con, "select approval_wait_p85_h, items from marts.headlines")[0]
    assert overall_p85 == pytest.approx(p85)
    assert items == rows(con, "select count(*) from marts.item_flow")[0][0]


def test_a_team_under_the_minimum_group_size_is_other(org: Org, tmp_path: Path) -> None:  # noqa: F811
    mixed_org(org)
    cfg = Config.model_validate({"privacy": {"min_group_size": 5}, "teams": [
        {"key": "pay", "jira_projects": ["PAY"], "github_repositories": [REPO],
         "members": [{"person": "jira:ana"}, {"person": "jira:bob"}, {"person": "github:ana"}]},
    ]})
    con = build(tmp_path, org, cfg)
    assert rows(con, "select count(*) from marts.item_flow where team = 'pay'")[0][0] > 0
    shown = {r[0] for r in rows(con, "select team from marts.team_headlines")}
    assert "pay" not in shown and "other" in shown
