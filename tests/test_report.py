"""report.html: one offline file of charts from the published marts, readable at 400 px, printable."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import report
from pipelines.cli import main
from pipelines.report import ALL, HEATMAPS, duration, write_report
from tests.chromium import Chromium
from tests.published import SMALL_TEAM, Built

ROOT = Path(__file__).resolve().parent.parent
SCREENS = ROOT / "var" / "screens"
CHARTS = ["wait-ledger", "approval-dist", "approval-trend", "decision-dist", "decision-trend", "cycle-time",
          "handoff-matrix", "dependency-matrix", "decision-rights", "flow-efficiency", "aging-wip", "reversals", "remote-decisions"]


@pytest.fixture(scope="module")
def page(bi: Built, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(bi.published, out, bi.config, cache_dir=tmp_path_factory.getbasetemp() / "vega-cache")
    return out


def specs(page: Path) -> dict[str, dict]:
    text = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id=specs type="application/json">(.*?)</script>', text, re.DOTALL).group(1))


def test_one_offline_file_that_states_its_period(page: Path, bi: Built) -> None:
    text = page.read_text(encoding="utf-8")
    assert page.stat().st_size < 5_000_000
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1</script>", text, flags=re.DOTALL)  # the page, not the libraries
    assert markup.count("<script") == 3
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link[^>]+href=|url\(\s*['\"]?https?:", markup)
    assert "window.vegaEmbed" in text  # the library is inside the page
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        as_of = con.execute("select as_of from meta.snapshot").fetchone()[0]
    finally:
        con.close()
    start = as_of - timedelta(weeks=12)
    assert f"Measured at {as_of:%Y-%m-%d %H:%M} UTC" in text
    assert f"Period: <b>{start.day} {start:%b %Y} to {as_of.day} {as_of:%b %Y}</b> (the last 12 weeks)" in text
    assert list(specs(page)) == CHARTS
    sections = re.findall(r'<section id="([^"]+)"><h2>[^<]+</h2><p class=how>([^<]+)</p>.*?<p class=src>From '
                          r'((?:marts|dims)\.[a-z_]+)[^<]*</p></section>', text, re.DOTALL)
    assert [s[0] for s in sections] == [*CHARTS, "waiting-now"]
    assert all(len(how.split(". ")) == 1 and how.endswith(".") for _, how, _ in sections)  # one sentence each
    assert stat.S_IMODE(os.stat(page).st_mode) & stat.S_IRWXO == 0


def team_values(page: Path) -> set[str]:
    """Every value the page shows as a team: selector options, data-team blocks, team fields of chart data."""
    text = page.read_text(encoding="utf-8")
    found = set(re.findall(r'<option value="([^"]+)"', text)) | set(re.findall(r'data-team="([^"]+)"', text))
    for spec in specs(page).values():
        for rows in spec.get("datasets", {}).values():
            for row in rows:
                found |= {str(v) for k, v in row.items() if k in ("team", "item_team", "on_team", "t", "row", "col")}
    return found


def test_teams_under_the_minimum_group_size_never_appear_by_name(page: Path, bi: Built) -> None:
    con = duckdb.connect(str(bi.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from marts.item_flow where team = ?", [SMALL_TEAM]).fetchone()[0] > 0
    finally:
        con.close()
    shown = team_values(page)
    assert "other" in shown and "payments" in shown
    assert SMALL_TEAM not in shown


def test_durations_are_hours_under_two_days_and_days_above() -> None:
    assert duration(90 * 60) == "1.5 h"
    assert duration(47.5 * 3600) == "47.5 h"
    assert duration(2 * 86400) == "2.0 d"
    assert duration(10.25 * 86400) == "10.2 d"
    assert duration(None) == "-"


def test_key_figures_are_medians_and_p85_of_the_period(bi: Built) -> None:
    d = report.load(bi.published, 12)
    figs = {r["team"]: r for r in report.figures(d).iter_rows(named=True)}
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        for team in (ALL, "payments"):
            where = "" if team == ALL else f"and team = '{team}'"
            p50, p85, n = con.execute(
                "select quantile_cont(cycle_s, 0.5), quantile_cont(cycle_s, 0.85), count(*) from marts.item_flow "
                f"where finished_at > (select as_of from meta.snapshot) - interval 12 weeks {where}").fetchone()
            assert figs[team]["finished"] == n > 0
            assert figs[team]["cycle_p50"] == pytest.approx(p50) and figs[team]["cycle_p85"] == pytest.approx(p85)
            mean = con.execute(f"select avg(handoffs) from marts.item_flow where finished_at > (select as_of from "
                               f"meta.snapshot) - interval 12 weeks {where}").fetchone()[0]
            assert figs[team]["handoffs_p50"] != pytest.approx(mean)  # outliers: the median is not the mean
    finally:
        con.close()


def test_the_dependency_and_decision_rights_matrices_are_heatmaps_of_their_marts(page: Path, bi: Built) -> None:
    got = specs(page)
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        start = (con.execute("select as_of from meta.snapshot").fetchone()[0] - timedelta(weeks=12)).date()
        for key, (mart, row, col, value) in {
                "dependency-matrix": ("marts.dependency_matrix", "blocking_team", "blocked_team", "items_blocked"),
                "decision-rights": ("marts.decision_rights", "owner_team", "deciding_team", "decisions")}.items():
            assert HEATMAPS[key].mart == mart
            want = {(r, c): v for r, c, v in con.execute(
                f"select {row}, {col}, sum({value}) from {mart} where week_start >= ? group by all", [start]).fetchall()}
            cells = next(iter(got[key]["datasets"].values()))
            assert {(c["row"], c["col"]): c["value"] for c in cells} == want and len(want) > 1, key
    finally:
        con.close()


def test_a_warehouse_without_data_gives_a_report_that_says_so(tmp_path) -> None:
    from pipelines.config import Config
    from pipelines.publish import publish
    from pipelines.warehouse import run_models

    run_models(tmp_path / "w.duckdb", Config(), "2026-01-01T00:00:00Z")
    publish(tmp_path / "w.duckdb", tmp_path / "p.duckdb")
    write_report(tmp_path / "p.duckdb", tmp_path / "r.html", cache_dir=tmp_path / "cache")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.count("Nothing in this period.") == len(CHARTS) and "Nothing is waiting." in text
    assert specs(tmp_path / "r.html") == {}


def test_flowlens_report_command(bi: Built, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("FLOWLENS_HOME", str(tmp_path))
    monkeypatch.delenv("FLOWLENS_CONFIG", raising=False)
    assert main(["report"]) == 1
    assert f"no published warehouse at {tmp_path / 'published' / 'flowlens.duckdb'}" in capsys.readouterr().err
    out = tmp_path / "r.html"
    assert main(["report", "--published", str(bi.published), "--out", str(out), "--weeks", "4"]) == 0
    assert "(the last 4 weeks)" in out.read_text(encoding="utf-8")
    assert main(["report", "--published", str(bi.published), "--weeks", "0"]) == 1


MARKS = ("JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('.chart')).map(e => "
         "[e.id.slice(6), e.querySelectorAll('.role-mark > path, .role-mark > text, .role-mark > line').length])))")


def test_report_in_headless_chromium(page: Path) -> None:
    """No console error, every chart drew marks, no network, no horizontal scroll at 400 px, prints to PDF."""
    with tempfile.TemporaryDirectory() as profile:
        browser = Chromium(Path(profile))
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                browser.send(f"{domain}.enable")
            for width, name in ((400, "narrow"), (1280, "wide")):  # printed below from the wide page, as on a desk
                browser.open(page.as_uri(), width)
                assert browser.wait_for("document.body && document.body.getAttribute('data-ready')") == "yes", \
                    browser.errors()
                marks = json.loads(browser.evaluate(MARKS))
                assert list(marks) == CHARTS and all(n > 0 for n in marks.values()), marks
                scroll = json.loads(browser.evaluate(
                    "JSON.stringify([document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth])"))
                assert max(scroll[:2]) <= scroll[2] == width, scroll
                browser.screenshot(SCREENS / f"report-{name}.png")
            # one team: the charts filter to it and still draw
            browser.evaluate("(() => { const s = document.getElementById('team'); s.value = 'payments';"
                             " s.dispatchEvent(new Event('change')); })()")
            browser.wait_for("document.querySelector('.cards.on') && "
                             "document.querySelector('.cards.on').getAttribute('data-team') === 'payments'")
            browser.wait_for("document.querySelectorAll('table.waits.on').length === 1")
            marks = json.loads(browser.evaluate(MARKS))
            assert all(n > 0 for n in marks.values()), marks
            browser.screenshot(SCREENS / "report-wide-payments.png")
            pdf = browser.pdf(SCREENS / "report.pdf")
            assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
            assert browser.errors() == []
            assert {u.split(":", 1)[0] for u in browser.requests()} <= {"file", "data", "about"}, browser.requests()
        finally:
            browser.close()
    assert (SCREENS / "report-wide.png").stat().st_size > 50_000


def test_charts_read_polars_frames_and_are_valid_vega_lite(bi: Built, monkeypatch) -> None:
    d = report.load(bi.published, 12)
    assert all(isinstance(f, pl.DataFrame) for f in d.frames.values())
    assert d.frames["items"].height > 0 and d.teams
    monkeypatch.setattr(report, "VALIDATE", True)  # the page is built without the (slow) schema check
    assert [s.key for s in report.sections(d) if s.spec] == CHARTS
