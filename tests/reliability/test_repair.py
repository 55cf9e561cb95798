"""Wrong answers never stick: `flowlens run --full-refresh [jira|github]` re-extracts and replaces what was loaded."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.run import run_all
from sandbox.server import Sandbox
from tests.test_cli import flowlens, one_line_error
from tests.test_pipeline_run import marts, prepare

DAMAGE = {  # what damaged answers left in raw: the changelogs of the 40 issues changed longest ago (no incremental
    # run fetches them again) emptied, and every approval read as a comment
    "jira__changelogs": """update raw.jira__changelogs set payload = json_merge_patch(payload, '{"changeHistories": []}')
                           where id in (select id from raw.jira__issues order by updated limit 40)""",
    "github__timeline_events": """update raw.github__timeline_events
                                  set payload = json_merge_patch(payload, '{"event": {"state": "commented"}}')
                                  where payload->'event'->>'state' = 'approved'""",
}
EMPTIED = "select count(*) from raw.jira__changelogs where json_array_length(payload->'changeHistories') = 0"
APPROVALS = "select count(*) from raw.github__timeline_events where payload->'event'->>'state' = 'approved'"


def damage(home: Path, tables: tuple[str, ...]) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for t in tables:
            assert con.execute(DAMAGE[t]).fetchone()[0] > 0


def extract_ids(home: Path, table: str) -> set[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {r[0] for r in con.execute(f"select distinct extract_id from raw.{table}").fetchall()}


def count(home: Path, sql: str) -> int:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_full_refresh_repairs_what_an_incremental_run_keeps(tmp_path, monkeypatch, small_store, baseline_run):
    store, home = small_store, tmp_path / "home"
    shutil.copytree(baseline_run[0], home)  # a home after one whole run
    published = home / "published" / "flowlens.duckdb"
    with Sandbox(store) as sb:
        config = prepare(monkeypatch, home, sb, store)
        good, emptied, approvals = marts(published), count(home, EMPTIED), count(home, APPROVALS)
        assert good == baseline_run[1]
        damage(home, tuple(DAMAGE))
        damaged = count(home, EMPTIED)
        assert damaged > emptied
        jira_before = extract_ids(home, "jira__changelogs")

        # GitHub re-extracted and replaced; Jira's run is incremental (the overlap window aside, it fetches nothing
        # again): its damage sticks
        only_github = run_all(str(config), home, out=io.StringIO(), full_refresh=("github",))
        assert only_github.ok, only_github.errors
        assert count(home, APPROVALS) == approvals
        assert not extract_ids(home, "github__timeline_events") & extract_ids(home, "jira__changelogs")
        assert jira_before <= extract_ids(home, "jira__changelogs")
        assert count(home, EMPTIED) == damaged
        assert marts(published) != good

        full = run_all(str(config), home, out=io.StringIO(), full_refresh=("jira", "github"))
        assert full.ok, full.errors
        assert not extract_ids(home, "jira__changelogs") & jira_before  # every Jira row replaced
        assert count(home, EMPTIED) == emptied
    assert marts(published) == good


def test_full_refresh_names_only_known_sources(tmp_path):
    proc = flowlens("run", "--full-refresh", "gitlab", env={"FLOWLENS_HOME": str(tmp_path)}, cwd=tmp_path)
    line = one_line_error(proc)
    assert line.startswith("flowlens: --full-refresh: unknown source 'gitlab'") and "jira, github" in line
    assert proc.returncode == 2
