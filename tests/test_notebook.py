"""flowlens.open() / flowlens.mart(): the published marts as polars frames for analysts."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

import flowlens
from tests.published import Built


def test_mart_is_a_polars_frame_of_the_published_table(bi: Built) -> None:
    flow = flowlens.mart("item_flow", path=bi.published)
    assert isinstance(flow, pl.DataFrame)
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        n, finished = con.execute("select count(*), count(finished_at) from marts.item_flow").fetchone()
    finally:
        con.close()
    assert flow.height == n > 0
    assert flow["finished_at"].null_count() == n - finished
    assert flow.schema["finished_at"] == pl.Datetime("us", flow.schema["finished_at"].time_zone)
    assert flow.schema["finished_at"].time_zone in ("UTC", "Etc/UTC")
    assert {"team", "cycle_s", "handoffs"} <= set(flow.columns)


def test_open_reads_several_tables_from_one_snapshot(bi: Built, monkeypatch) -> None:
    monkeypatch.setenv("FLOWLENS_HOME", str(bi.published.parent.parent))
    with flowlens.open() as wh:
        assert set(wh.marts()) >= {"item_flow", "wait_intervals", "handoffs", "team_weekly"}
        assert wh.mart("dims.teams").filter(pl.col("team") == "other").height == 1
        assert wh.as_of == wh.mart("meta.snapshot")["as_of"][0]
        per_team = wh.sql("select team, count(*) as n from marts.item_flow group by team")
        assert per_team["n"].sum() == wh.mart("item_flow").height
    with pytest.raises(duckdb.Error):
        wh.sql("select 1")  # closed at the end of the block: the next publish is seen on the next open


def test_unknown_mart_and_missing_file_say_what_to_do(bi: Built, tmp_path) -> None:
    with pytest.raises(KeyError, match="item_flow"):
        flowlens.mart("item_flows", path=bi.published)
    with pytest.raises(KeyError):
        flowlens.mart("raw.jira__issues", path=bi.published)
    with pytest.raises(FileNotFoundError, match="flowlens run"):
        flowlens.mart("item_flow", path=tmp_path / "nothing.duckdb")
