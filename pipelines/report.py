"""report.html: how work flows, as charts a leader can forward, from the published marts.

One self-contained file: Vega-Lite specs (built with Altair from polars frames) and the vega, vega-lite and
vega-embed libraries inlined, nothing fetched. A team selector filters every chart. Durations are hours under
two days and days above; distributions are medians and percentiles, never means.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from pipelines.config import Config

# (key, label) in display order: the terminal table of `flowlens demo` and the Dagster metadata.
COLUMNS = [("team", "team"), ("items_finished", "items done"), ("handoffs_per_item", "handoffs/item"),
           ("approval_wait_p85_h", "approval wait p85 (h)"), ("decision_latency_p85_h", "decision latency p85 (h)"),
           ("flow_efficiency", "flow efficiency"), ("cycle_time_p85_d", "cycle time p85 (d)")]
DEFAULT_WEEKS = 12
ALL = "all"  # the team selector's value for the whole organisation
TWO_DAYS = 2 * 86400
VALIDATE = False  # check every spec against the Vega-Lite schema (slow: seconds; the tests turn it on)
CAUSES = ["queue", "approval", "review", "decision", "blocked", "dependency", "unowned"]
WIP_STATES = ["active", "queue", "approval", "decision", "blocked"]


def _dicts(con: Any, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def team_rows(con: Any) -> list[dict]:
    """One row of headline metrics per team."""
    return _dicts(con, "select * from marts.team_headlines")


def overall(con: Any) -> dict[str, float]:
    """The headline figures over every item, as plain numbers (None where nothing was measured)."""
    row = _dicts(con, "select * from marts.headlines")[0]
    return {k: (float(v) if v is not None else None) for k, v in row.items()}


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def text_table(rows: list[dict]) -> str:
    """A plain table for the terminal."""
    cells = [[label for _, label in COLUMNS]] + [[fmt(r.get(k)) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _connect(published: str | os.PathLike) -> Any:
    import duckdb

    path = Path(published)
    if not path.is_file():
        raise FileNotFoundError(f"no published warehouse at {path}: run `flowlens run` first")
    con = duckdb.connect(str(path), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    return con


def read_published(published: str | os.PathLike) -> tuple[list[dict], dict[str, float]]:
    con = _connect(published)
    try:
        return team_rows(con), overall(con)
    finally:
        con.close()


# ---------------------------------------------------------------- durations


def duration(seconds: float | None) -> str:
    """Hours under two days, days above."""
    if seconds is None:
        return "-"
    if seconds < TWO_DAYS:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _duration_expr(col: str) -> pl.Expr:
    s = pl.col(col)
    return (pl.when(s.is_null()).then(pl.lit("-"))
            .when(s < TWO_DAYS).then((s / 3600).round(1).cast(pl.String) + " h")
            .otherwise((s / 86400).round(1).cast(pl.String) + " d"))


# Axis labels of a log-scale axis in hours: minutes under an hour, hours under two days, days above.
HOURS_LABEL = ("datum.value < 1 ? format(datum.value * 60, '~r') + ' min' : datum.value < 48 ? "
               "format(datum.value, '~r') + ' h' : format(datum.value / 24, '~r') + ' d'")
HOUR_TICKS = [1 / 60, 5 / 60, 15 / 60, 1, 4, 24, 96, 336, 1440, 4320, 8760]  # 1 min ... 4 d, 14 d, 60 d, 1 y
MIN_HOURS = 1 / 60  # a log axis starts at one minute; shorter waits are drawn there


def _q(values: pl.Expr, p: float) -> pl.Expr:
    return values.quantile(p, interpolation="linear")  # continuous, as quantile_cont in the marts


# ---------------------------------------------------------------- data


@dataclass
class Data:
    as_of: datetime
    start: datetime
    weeks: int
    first_item_at: datetime | None
    min_group_size: int
    pseudonymized: bool
    teams: list[str]
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    people: dict[str, str] = field(default_factory=dict)  # person id -> display name


def load(published: str | os.PathLike, weeks: int = DEFAULT_WEEKS) -> Data:
    """Read what the report needs from the published file into polars frames."""
    con = _connect(published)
    try:
        def frame(sql: str, params: list | None = None) -> pl.DataFrame:
            return pl.DataFrame(con.sql(sql, params=params) if params else con.sql(sql))

        as_of, first, min_size, pseudo = con.execute(
            "select as_of, first_item_at, min_group_size, pseudonymized from meta.snapshot").fetchone()
        start = as_of - timedelta(weeks=weeks)
        tables = {f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()").fetchall()}
        d = Data(as_of, start, weeks, first, min_size, bool(pseudo), [], tables=tables)
        d.frames["items"] = frame(
            "select item_id, team, title, kind, started_at, finished_at, current_state, cycle_s, active_s, "
            "waiting_s, handoffs, bounces from marts.item_flow")
        d.frames["waits"] = frame(
            "select w.item_id, w.cause, w.started_at, w.ended_at, w.waited_on, w.waited_on_team, w.is_open, "
            "w.calendar_s from marts.wait_intervals as w where w.ended_at > ?", [start])
        d.people = dict(con.execute("select person_id, display_name from dims.people").fetchall())
        d.frames["approvals"] = frame(
            "select item_id, decided_at, calendar_s, requested_of_team from marts.approval_waits "
            "where not is_open and decided_at > ?", [start])
        d.frames["decisions"] = frame(
            "select item_id, decided_at, calendar_s, owner_team, decided_by_team, is_remote_decision "
            "from marts.decision_waits where not is_open and decided_at > ?", [start])
        d.frames["reversals"] = frame(
            "select item_id, kind from marts.reversals where reversed_at > ?", [start])
        for name, spec in HEATMAPS.items():
            if spec.mart in tables and name not in d.frames:
                d.frames[name] = frame(f"select * from {spec.mart}" + (
                    f" where {spec.week_column} >= ?" if spec.week_column else ""),
                    [start.date()] if spec.week_column else None)
    finally:
        con.close()
    items = d.frames["items"]
    d.teams = sorted(t for t in items["team"].unique().to_list() if t is not None)
    return d


def _with_team(frame: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Add the item's owning team (the team selector filters by it)."""
    return frame.join(items.select("item_id", pl.col("team").alias("item_team")), on="item_id", how="left")


def _per_team(frame: pl.DataFrame, team_col: str, agg: Callable[[pl.DataFrame], pl.DataFrame],
              teams: list[str]) -> pl.DataFrame:
    """`agg` over all rows (team 'all') and over each team's rows, stacked."""
    parts = [agg(frame).with_columns(team=pl.lit(ALL))]
    for t in teams:
        sub = frame.filter(pl.col(team_col) == t)
        if sub.height:
            parts.append(agg(sub).with_columns(team=pl.lit(t)))
    return pl.concat(parts, how="diagonal_relaxed")


# ---------------------------------------------------------------- charts


@dataclass
class Section:
    key: str
    title: str
    how: str  # one sentence: what it shows and how to read it
    source: str  # the mart(s) its numbers come from
    spec: dict | None = None  # Vega-Lite
    html: str = ""  # or plain HTML (tables)
    note: str = ""


def _alt():
    import altair as alt

    alt.data_transformers.disable_max_rows()
    return alt


def _base(chart: Any, height: int = 260, team_filter: str | None = "datum.team == team") -> dict:
    alt = _alt()
    chart = chart.properties(width="container", height=height).add_params(alt.param(name="team", value=ALL))
    if team_filter:
        chart = chart.transform_filter(team_filter)
    spec = chart.to_dict(validate=VALIDATE)
    spec.setdefault("config", {}).update({"view": {"stroke": None}, "axis": {"labelFontSize": 11, "titleFontSize": 11},
                                          "legend": {"orient": "bottom", "columns": 3, "labelFontSize": 11}})
    return spec


def _team_or_all(col: str = "item_team") -> str:
    return f"team == '{ALL}' || datum.{col} == team"


def wait_ledger(d: Data) -> Section:
    w = _with_team(d.frames["waits"], d.frames["items"])
    w = w.with_columns(
        seconds=(pl.min_horizontal(pl.col("ended_at"), pl.lit(d.as_of)).dt.epoch("s")
                 - pl.max_horizontal(pl.col("started_at"), pl.lit(d.start)).dt.epoch("s")).cast(pl.Float64),
        on_team=pl.col("waited_on_team").fill_null("nobody named"))
    agg = (w.filter(pl.col("seconds") > 0).group_by("item_team", "on_team", "cause")
           .agg(days=(pl.col("seconds").sum() / 86400).round(1), waits=pl.len()))
    alt = _alt()
    chart = alt.Chart(agg).mark_bar().encode(
        y=alt.Y("on_team:N", title="waiting on team", sort="-x"),
        x=alt.X("sum(days):Q", title="days of waiting (sum over items)"),
        color=alt.Color("cause:N", scale=alt.Scale(domain=CAUSES), title="cause"),
        tooltip=[alt.Tooltip("on_team:N", title="waiting on"), alt.Tooltip("cause:N"),
                 alt.Tooltip("sum(days):Q", title="days", format=".1f"), alt.Tooltip("sum(waits):Q", title="waits")])
    return Section("wait-ledger", "What do we wait for, and on whom?",
                   "Each bar is a team that items waited on, split by what they waited for; a longer bar is more "
                   "item-days lost waiting on that team in the period (waits overlapping it, cut to it).",
                   "marts.wait_intervals",
                   _base(chart, height=max(160, 26 * agg["on_team"].n_unique()), team_filter=_team_or_all()))


def _percentile_lines(frame: pl.DataFrame, value: str, teams: list[str], team_col: str) -> pl.DataFrame:
    def agg(f: pl.DataFrame) -> pl.DataFrame:
        return f.select(p50=_q(pl.col(value), 0.5), p85=_q(pl.col(value), 0.85), p95=_q(pl.col(value), 0.95),
                        n=pl.len())

    wide = _per_team(frame, team_col, agg, teams).filter(pl.col("n") > 0)
    return wide.unpivot(index=["team", "n"], on=["p50", "p85", "p95"], variable_name="percentile",
                        value_name="hours").with_columns(pl.col("hours") / 3600).with_columns(
        label=pl.col("percentile") + " " + _duration_expr_h("hours"))


def _duration_expr_h(col: str) -> pl.Expr:
    s = pl.col(col)
    return (pl.when(s < 48).then(s.round(1).cast(pl.String) + " h")
            .otherwise((s / 24).round(1).cast(pl.String) + " d"))


def _log_hours(title: str, hours: pl.Series) -> dict:
    """A log-scale axis of hours from one minute to the data's maximum, labelled in minutes, hours or days."""
    alt = _alt()
    top = max(float(hours.max() or 1), 1.0)
    lo = max(float(hours.min() or MIN_HOURS), MIN_HOURS)
    values = [v for v in HOUR_TICKS if lo / 2 <= v <= top * 2]
    return {"scale": alt.Scale(type="log", domain=[min(values[0], lo), max(values[-1], top)], clamp=True),
            "axis": alt.Axis(labelExpr=HOURS_LABEL, title=title, values=values, grid=True, labelOverlap="greedy")}


BINS_PER_DECADE = 6  # histogram bins on the log axis: each is 10 ** (1/6), about 1.47 times the one before


def distribution(d: Data, key: str, frame_name: str, what: str, title: str, how: str, source: str) -> Section:
    """A histogram on a log axis (a dozen waits or a hundred thousand) with the p50, p85 and p95 lines."""
    alt = _alt()
    f = _with_team(d.frames[frame_name], d.frames["items"]).filter(pl.col("calendar_s") > 0)
    hours = pl.max_horizontal(pl.col("calendar_s") / 3600, pl.lit(MIN_HOURS))
    b = (hours.log10() * BINS_PER_DECADE).floor()
    bars = f.group_by(pl.col("item_team").alias("team"), b.alias("b")).agg(n=pl.len()).with_columns(
        lo=10 ** (pl.col("b") / BINS_PER_DECADE), hi=10 ** ((pl.col("b") + 1) / BINS_PER_DECADE)).with_columns(
        range=_duration_expr_h("lo") + " to " + _duration_expr_h("hi"))
    lines = _percentile_lines(f, "calendar_s", d.teams, "item_team")
    hist = alt.Chart(bars).mark_bar(color="#4c78a8", opacity=0.8).encode(
        x=alt.X("lo:Q", **_log_hours(f"{what} (log scale)", pl.concat([bars["lo"], bars["hi"]]))), x2="hi:Q",
        y=alt.Y("sum(n):Q", title="count"),
        tooltip=[alt.Tooltip("range:N", title=what), alt.Tooltip("sum(n):Q", title="count")])
    hist = hist.transform_filter(_team_or_all("team"))
    rules = alt.Chart(lines).mark_rule(color="#d62728", strokeWidth=2).encode(
        x="hours:Q", tooltip=[alt.Tooltip("label:N", title=what), alt.Tooltip("n:Q", title="of")])
    text = alt.Chart(lines.with_columns(  # stacked, so the three labels never overlap on a narrow screen
        y=pl.col("percentile").replace_strict({"p50": 8, "p85": 20, "p95": 32}, return_dtype=pl.Int64))).mark_text(
        align="left", dx=3, fontSize=11, color="#d62728").encode(x="hours:Q", y=alt.Y("y:Q", scale=None),
                                                                   text="label:N")
    rules, text = rules.transform_filter("datum.team == team"), text.transform_filter("datum.team == team")
    spec = _base(alt.layer(hist, rules, text).resolve_scale(y="independent"), height=150, team_filter=None)
    return Section(key, title, how, source, spec)


def weekly_trend(d: Data, key: str, frame_name: str, when: str, what: str, title: str, how: str,
                 source: str) -> Section:
    alt = _alt()
    f = _with_team(d.frames[frame_name], d.frames["items"]).with_columns(
        week=pl.col(when).dt.truncate("1w").dt.date())

    def agg(g: pl.DataFrame) -> pl.DataFrame:
        return g.group_by("week").agg(p50=_q(pl.col("calendar_s"), 0.5), p85=_q(pl.col("calendar_s"), 0.85),
                                      p95=_q(pl.col("calendar_s"), 0.95), n=pl.len())

    t = _per_team(f, "item_team", agg, d.teams).unpivot(
        index=["team", "week", "n"], on=["p50", "p85", "p95"], variable_name="percentile", value_name="s")
    t = t.filter(pl.col("s") > 0).with_columns(hours=pl.col("s") / 3600, label=_duration_expr("s"))
    chart = alt.Chart(t).mark_line(point=True).encode(
        x=alt.X("week:T", title="week", axis=alt.Axis(format="%d %b", labelAngle=0, tickCount=6)),
        y=alt.Y("hours:Q", **_log_hours(f"{what} (log scale)", t["hours"])),
        color=alt.Color("percentile:N", scale=alt.Scale(domain=["p50", "p85", "p95"],
                                                        range=["#1f77b4", "#ff7f0e", "#d62728"])),
        tooltip=[alt.Tooltip("week:T", format="%d %b %Y"), "percentile:N", alt.Tooltip("label:N", title=what),
                 alt.Tooltip("n:Q", title="decided")])
    return Section(key, title, how, source, _base(chart, height=220))


def cycle_scatter(d: Data) -> Section:
    alt = _alt()
    items = d.frames["items"]
    done = items.filter(pl.col("finished_at") >= d.start, pl.col("cycle_s") > 0).select(
        "item_id", "team", "finished_at", hours=pl.col("cycle_s") / 3600, label=_duration_expr("cycle_s"))
    lines = _percentile_lines(done.with_columns(s=pl.col("hours") * 3600), "s", d.teams, "team")
    dots = alt.Chart(done).mark_circle(size=18, opacity=0.5).encode(
        x=alt.X("finished_at:T", title="finished", axis=alt.Axis(format="%d %b", labelAngle=0, tickCount=6)),
        y=alt.Y("hours:Q", **_log_hours("cycle time (log scale)", done["hours"])),
        color=alt.Color("team:N", title="team"),
        tooltip=[alt.Tooltip("item_id:N", title="item"), alt.Tooltip("team:N"),
                 alt.Tooltip("finished_at:T", format="%d %b %Y"), alt.Tooltip("label:N", title="cycle time")])
    dots = dots.transform_filter(_team_or_all("team"))
    rules = alt.Chart(lines).mark_rule(strokeDash=[4, 3], color="#444").encode(
        y="hours:Q", tooltip=[alt.Tooltip("label:N", title="cycle time")])
    text = alt.Chart(lines).mark_text(align="left", x=2, dy=-6, fontSize=11, color="#444").encode(
        y="hours:Q", text="label:N")
    rules, text = rules.transform_filter("datum.team == team"), text.transform_filter("datum.team == team")
    return Section("cycle-time", "Cycle time of finished items",
                   "Each dot is an item finished in the period, placed by when it finished and how long it took "
                   "from start to done; the dashed lines are the median, p85 and p95: most items finish below "
                   "p85, the dots far above it are the ones to ask about.",
                   "marts.item_flow", _base(alt.layer(dots, rules, text), height=280, team_filter=None))


@dataclass(frozen=True)
class Heatmap:
    """A team-to-team matrix chart. A mart with `row`, `column` and `value` columns becomes a heatmap section."""

    mart: str
    title: str
    how: str
    row: str
    column: str
    value: str
    row_title: str
    column_title: str
    week_column: str | None = "week_start"
    note: Callable[[pl.DataFrame], str] | None = None


def _bounce_note(f: pl.DataFrame) -> str:
    handoffs, bounces = f["handoffs"].sum(), f["bounces"].sum()
    rate = f"{bounces / handoffs:.0%}" if handoffs else "-"
    return (f"Bounce rate: {rate} of the {handoffs:,} handoffs in the period went back to someone who had held the "
            "item before.")


# Team-to-team matrices shown as heatmaps, in order. The marts of issue 16 (dependency_matrix: blocking team ->
# blocked team; decision_rights: owning team -> deciding team) are one entry each; a mart not in the published
# file is skipped.
HEATMAPS: dict[str, Heatmap] = {
    "handoff-matrix": Heatmap(
        "marts.handoff_matrix", "Handoffs between teams",
        "Each cell counts handoffs from the team on the left to the team below in the period; the diagonal is "
        "work staying in a team, bright cells off it are where work crosses team lines most.",
        row="from_team", column="to_team", value="handoffs", row_title="from team", column_title="to team",
        note=_bounce_note),
    "dependency-matrix": Heatmap(
        "marts.dependency_matrix", "Who blocks whom",
        "Each cell counts, week by week, the items of the team below that waited on the team on the left, blocked "
        "by one of its items (a declared link) or held by one of its members while waiting (undeclared).",
        row="blocking_team", column="blocked_team", value="items_blocked", row_title="blocking team",
        column_title="blocked team"),
    "decision-rights": Heatmap(
        "marts.decision_rights", "Who decides for whom",
        "Each cell counts the decisions and approvals on the items of the team on the left made by the team "
        "below; the diagonal is work where decisions are made, bright cells off it are decisions made elsewhere.",
        row="owner_team", column="deciding_team", value="decisions", row_title="owning team",
        column_title="deciding team"),
}


def heatmap(d: Data, key: str, spec: Heatmap) -> Section:
    alt = _alt()
    f = d.frames[key]
    cells = f.group_by(spec.row, spec.column).agg(pl.col(spec.value).sum().alias("value"))
    chart = alt.Chart(cells.rename({spec.row: "row", spec.column: "col"}))
    rect = chart.mark_rect().encode(
        y=alt.Y("row:N", title=spec.row_title),
        x=alt.X("col:N", title=spec.column_title, axis=alt.Axis(labelAngle=-40)),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="blues"), title=spec.value.replace("_", " ")),
        tooltip=[alt.Tooltip("row:N", title=spec.row_title), alt.Tooltip("col:N", title=spec.column_title),
                 alt.Tooltip("value:Q", title=spec.value.replace("_", " "), format=",.0f")])
    text = chart.mark_text(fontSize=10).encode(
        y="row:N", x="col:N", text=alt.Text("value:Q", format=",.0f"),
        color=alt.condition("datum.value > 0.5 * datum.domainMax", alt.value("white"), alt.value("#222")))
    text = text.transform_joinaggregate(domainMax="max(value)")
    n = max(cells[spec.row].n_unique(), 1)
    spec_dict = _base(alt.layer(rect, text), height=max(140, 30 * n),
                      team_filter=f"team == '{ALL}' || datum.row == team || datum.col == team")
    return Section(key, spec.title, spec.how, spec.mart, spec_dict, note=spec.note(f) if spec.note else "")


def flow_efficiency(d: Data) -> Section:
    alt = _alt()
    items = d.frames["items"].filter(pl.col("finished_at") >= d.start).with_columns(
        week=pl.col("finished_at").dt.truncate("1w").dt.date())

    def agg(g: pl.DataFrame) -> pl.DataFrame:
        return g.group_by("week").agg(
            efficiency=pl.col("active_s").sum() / (pl.col("active_s").sum() + pl.col("waiting_s").sum()),
            finished=pl.len())

    t = _per_team(items, "team", agg, d.teams).filter(pl.col("efficiency").is_not_nan())
    chart = alt.Chart(t).mark_line(point=True).encode(
        x=alt.X("week:T", title="week finished", axis=alt.Axis(format="%d %b", labelAngle=0, tickCount=6)),
        y=alt.Y("efficiency:Q", title="flow efficiency", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("week:T", format="%d %b %Y"), alt.Tooltip("efficiency:Q", format=".0%"),
                 alt.Tooltip("finished:Q", title="items finished")])
    return Section("flow-efficiency", "Flow efficiency by week",
                   "The share of the cycle time of items finished each week that someone was working on them "
                   "rather than waiting (active / (active + waiting)); higher is better, and 15-40% is common.",
                   "marts.item_flow (as marts.team_weekly.flow_efficiency)", _base(chart, height=200))


def aging_wip(d: Data) -> Section:
    alt = _alt()
    items = d.frames["items"]
    wip = items.filter(pl.col("finished_at").is_null(), pl.col("started_at").is_not_null(),
                       pl.col("current_state").is_in(WIP_STATES), pl.col("cycle_s") > 0).select(
        "item_id", "team", "current_state", hours=pl.col("cycle_s") / 3600, label=_duration_expr("cycle_s"),
        # the state's column, spread by a jitter that is the same on every build of the report
        pos=pl.col("current_state").replace_strict(WIP_STATES, list(range(len(WIP_STATES))), return_dtype=pl.Float64)
        + (pl.col("item_id").hash(seed=1) % 1000 / 1000 - 0.5) * 0.6)
    done = items.filter(pl.col("finished_at") >= d.start, pl.col("cycle_s") > 0)
    lines = _percentile_lines(done, "cycle_s", d.teams, "team").filter(pl.col("percentile") != "p95")
    dots = alt.Chart(wip).mark_circle(size=30, opacity=0.65).encode(
        x=alt.X("pos:Q", title="where it is now", scale=alt.Scale(domain=[-0.5, len(WIP_STATES) - 0.5]),
                axis=alt.Axis(values=list(range(len(WIP_STATES))), grid=False, labelExpr=f"{WIP_STATES}[datum.value]")),
        y=alt.Y("hours:Q", **_log_hours("age since started (log scale)",
                                            pl.concat([wip["hours"], lines["hours"]]))),
        color=alt.Color("team:N", title="team"),
        tooltip=[alt.Tooltip("item_id:N", title="item"), "team:N", alt.Tooltip("current_state:N", title="state"),
                 alt.Tooltip("label:N", title="age")])
    dots = dots.transform_filter(_team_or_all("team"))
    rules = alt.Chart(lines).mark_rule(strokeDash=[4, 3], color="#444").encode(y="hours:Q")
    text = alt.Chart(lines).mark_text(align="left", x=2, dy=-6, fontSize=11, color="#444").encode(
        y="hours:Q", text="label:N")
    rules, text = rules.transform_filter("datum.team == team"), text.transform_filter("datum.team == team")
    return Section("aging-wip", "Aging work in progress",
                   "Each dot is an item started and not finished, by the state it is in now and how long ago it "
                   "started; the dashed lines are the median and p85 cycle time of finished items, so a dot "
                   "above p85 is already older than most finished work took.",
                   "marts.item_flow", _base(alt.layer(dots, rules, text), height=260, team_filter=None))


def reversals(d: Data) -> Section:
    alt = _alt()
    r = _with_team(d.frames["reversals"], d.frames["items"]).group_by("item_team", "kind").agg(n=pl.len()).with_columns(
        pl.col("kind").str.replace_all("_", " "))
    chart = alt.Chart(r).mark_bar().encode(
        y=alt.Y("kind:N", title=None, sort="-x"), x=alt.X("sum(n):Q", title="reversals in the period"),
        tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("sum(n):Q", title="reversals")])
    return Section("reversals", "Decisions revisited",
                   "Each bar counts one kind of reversal in the period (reopened items, approvals asked again, "
                   "scope or priority changed after work started); many of one kind point at where decisions do "
                   "not hold.", "marts.reversals",
                   _base(chart, height=max(120, 26 * max(r["kind"].n_unique(), 1)), team_filter=_team_or_all()))


def remote_decisions(d: Data) -> Section:
    alt = _alt()
    f = d.frames["decisions"].group_by("owner_team").agg(
        share=pl.col("is_remote_decision").cast(pl.Float64).mean(), decisions=pl.len()).rename({"owner_team": "t"})
    chart = alt.Chart(f).mark_bar().encode(
        y=alt.Y("t:N", title="team owning the work", sort="-x"),
        x=alt.X("share:Q", title="decisions made outside the team", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        opacity=alt.condition(f"team == '{ALL}' || datum.t == team", alt.value(1), alt.value(0.25)),
        tooltip=[alt.Tooltip("t:N", title="team"), alt.Tooltip("share:Q", format=".0%", title="decided elsewhere"),
                 alt.Tooltip("decisions:Q")])
    return Section("remote-decisions", "Where decisions are made",
                   "For each team, the share of the decisions on its work made by someone of another team in the "
                   "period; a long bar means the team waits on others to decide its work.",
                   "marts.decision_waits",
                   _base(chart, height=max(120, 26 * max(f.height, 1)), team_filter=None))


def longest_waits(d: Data, top: int = 12) -> Section:
    w = _with_team(d.frames["waits"].filter(pl.col("is_open")), d.frames["items"]).join(
        d.frames["items"].select("item_id", "title"), on="item_id", how="left").sort("calendar_s", descending=True)
    groups = [(ALL, w.head(top))] + [(t, w.filter(pl.col("item_team") == t).head(top)) for t in d.teams]
    names = d.people

    def whom(r: dict) -> str:
        if not r["waited_on"]:
            return "nobody named"
        return ", ".join(names.get(p, p) for p in r["waited_on"].split(","))  # JSM: several approvers

    parts = []
    for team, rows in groups:
        body = "".join(
            "<tr>"
            f"<td><b>{html.escape(r['item_id'])}</b><br><span class=t>{html.escape(r['title'] or '')}</span></td>"
            f"<td>{html.escape(r['cause'])}<br><b>{html.escape(duration(r['calendar_s']))}</b></td>"
            f"<td>{html.escape(whom(r))}<br><span class=t>{html.escape(r['waited_on_team'] or '')}</span></td></tr>"
            for r in rows.iter_rows(named=True))
        body = body or "<tr><td colspan=3>Nothing is waiting.</td></tr>"
        parts.append(f'<table class=waits data-team="{html.escape(team)}"><thead><tr><th>item</th>'
                     f'<th>waiting for, how long</th><th>on whom</th></tr></thead><tbody>{body}</tbody></table>')
    return Section("waiting-now", "Waiting longest right now",
                   "The open items that have waited longest at the moment of measurement, what they wait for and "
                   "on whom: the list to act on tomorrow.", "marts.wait_intervals, marts.item_flow, dims.people",
                   html="".join(parts))


def sections(d: Data) -> list[Section]:
    out = [wait_ledger(d),
           distribution(d, "approval-dist", "approvals", "approval wait", "Approval waits",
                        "How long the approvals and reviews decided in the period waited (each bar counts the waits "
                        "of one range, on a log scale); the red lines mark the median (p50), p85 and p95: the p85 "
                        "is what someone asking for an approval should expect.", "marts.approval_waits"),
           weekly_trend(d, "approval-trend", "approvals", "decided_at", "approval wait", "Approval waits by week",
                        "The median, p85 and p95 approval wait of the approvals decided each week; falling lines "
                        "mean approvals come faster, a p95 far above the p85 means a few requests are forgotten.",
                        "marts.approval_waits"),
           distribution(d, "decision-dist", "decisions", "decision latency", "Decision latency",
                        "How long work waited for the decisions made in the period (each bar counts the waits of "
                        "one range, on a log scale); the red lines mark the median (p50), p85 and p95.",
                        "marts.decision_waits"),
           weekly_trend(d, "decision-trend", "decisions", "decided_at", "decision latency",
                        "Decision latency by week",
                        "The median, p85 and p95 wait for a decision, by the week it was made; rising lines mean "
                        "work waits longer for someone to decide.", "marts.decision_waits"),
           cycle_scatter(d)]
    out += [heatmap(d, key, spec) for key, spec in HEATMAPS.items() if key in d.frames]
    out += [flow_efficiency(d), aging_wip(d), reversals(d), remote_decisions(d), longest_waits(d)]
    return out


# ---------------------------------------------------------------- key figures


def figures(d: Data) -> pl.DataFrame:
    """The key figures per team and for 'all': medians and p85, never means."""
    items = d.frames["items"]
    done = items.filter(pl.col("finished_at") >= d.start)
    approvals = _with_team(d.frames["approvals"], items)
    decisions = _with_team(d.frames["decisions"], items)

    def one(team: str | None) -> dict:
        def pick(f: pl.DataFrame, col: str) -> pl.DataFrame:
            return f if team is None else f.filter(pl.col(col) == team)

        dn, ap, de = pick(done, "team"), pick(approvals, "item_team"), pick(decisions, "item_team")
        wip = pick(items, "team").filter(pl.col("finished_at").is_null(), pl.col("started_at").is_not_null())
        active, waiting = dn["active_s"].sum(), dn["waiting_s"].sum()
        return {"team": team or ALL, "finished": dn.height, "wip": wip.height,
                "cycle_p50": dn["cycle_s"].median(), "cycle_p85": dn["cycle_s"].quantile(0.85, "linear"),
                "handoffs_p50": dn["handoffs"].median(), "handoffs_p85": dn["handoffs"].quantile(0.85, "linear"),
                "approval_p50": ap["calendar_s"].median(), "approval_p85": ap["calendar_s"].quantile(0.85, "linear"),
                "decision_p50": de["calendar_s"].median(), "decision_p85": de["calendar_s"].quantile(0.85, "linear"),
                "efficiency": active / (active + waiting) if active + waiting else None}

    return pl.DataFrame([one(None)] + [one(t) for t in d.teams])


def _cards(row: dict) -> str:
    def num(v: Any, f: str = "{:.0f}") -> str:
        return "-" if v is None else f.format(v)

    cards = [("items finished", num(row["finished"]), "in the period"),
             ("cycle time", duration(row["cycle_p50"]), f"median; p85 {duration(row['cycle_p85'])}"),
             ("approval wait", duration(row["approval_p50"]), f"median; p85 {duration(row['approval_p85'])}"),
             ("decision latency", duration(row["decision_p50"]), f"median; p85 {duration(row['decision_p85'])}"),
             ("handoffs per item", num(row["handoffs_p50"], "{:.3g}"),
              f"median; p85 {num(row['handoffs_p85'], '{:.2g}')}"),
             ("flow efficiency", num(row["efficiency"] * 100 if row["efficiency"] is not None else None, "{:.0f}%"),
              "active / (active + waiting)"),
             ("work in progress", num(row["wip"]), "started, not finished, now")]
    return "".join(f"<div class=card><div class=l>{html.escape(label)}</div><div class=v>{html.escape(value)}</div>"
                   f"<div class=s>{html.escape(sub)}</div></div>" for label, value, sub in cards)


# ---------------------------------------------------------------- the page


def vega_bundle(cache_dir: str | os.PathLike | None = None) -> str:
    """vega, vega-lite and vega-embed as one script (vl-convert bundles them; cached: bundling takes seconds)."""
    import altair as alt
    import vl_convert as vlc

    vl = "v" + ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    cached = None
    if cache_dir is not None:
        from importlib.metadata import version

        cached = Path(cache_dir) / f"vega-bundle-{version('vl-convert-python')}-{vl}.js"
        if cached.is_file():
            return cached.read_text(encoding="utf-8")
    js = vlc.javascript_bundle(vl_version=vl)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(js, encoding="utf-8")
        os.replace(tmp, cached)
    return js


CSS = """
*{box-sizing:border-box} html{-webkit-text-size-adjust:100%}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:700px;margin:0 auto;padding:16px 14px 40px;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 .3rem} h2{font-size:1.12rem;margin:0 0 .25rem}
.meta{color:#555;font-size:.9rem;margin:.2rem 0}
.controls{position:sticky;top:0;background:#fff;padding:.5rem 0;z-index:2;border-bottom:1px solid #eee}
.controls select{font-size:1rem;padding:.2rem .4rem;max-width:100%}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:.8rem 0}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.5rem .7rem}
.card .l{font-size:.8rem;color:#555} .card .v{font-size:1.35rem;font-weight:600} .card .s{font-size:.75rem;color:#777}
section{margin:1.6rem 0 0;break-inside:avoid;page-break-inside:avoid}
.how{margin:.1rem 0 .4rem;color:#333;font-size:.92rem} .src{color:#777;font-size:.8rem;margin:.2rem 0 0}
.note{font-size:.9rem;margin:.3rem 0 0} .empty{color:#777;font-style:italic}
.chart{width:100%;min-height:60px}
table.waits{width:100%;border-collapse:collapse;font-size:.88rem;table-layout:fixed}
table.waits th,table.waits td{padding:.35rem .3rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top;
 overflow-wrap:anywhere}
table.waits th:nth-child(1){width:44%} table.waits th:nth-child(2){width:22%}
.n{text-align:right!important;white-space:nowrap} .t{color:#666;font-size:.82rem}
footer{margin-top:2rem;color:#777;font-size:.8rem}
[data-team]{display:none} [data-team].on{display:block} table[data-team].on{display:table} .cards[data-team].on{display:grid}
@media print{body{background:#fff} main{max-width:none;padding:0} .controls{position:static;border:0}
 .controls select{display:none} .controls .chosen{display:inline}}
.chosen{display:none;font-weight:600}
@page{size:A4;margin:12mm}
"""

SCRIPT = """
(function(){
  var specs = JSON.parse(document.getElementById('specs').textContent);
  var views = [];
  var embeds = Object.keys(specs).map(function(key){
    return vegaEmbed('#chart-' + key, specs[key], {renderer: 'svg', actions: false}).then(function(r){
      views.push(r.view);
    });
  });
  function show(team){
    document.querySelectorAll('[data-team]').forEach(function(el){
      el.classList.toggle('on', el.getAttribute('data-team') === team);
    });
    var chosen = document.getElementById('chosen');
    chosen.textContent = team === 'all' ? 'all teams' : team;
    return Promise.all(views.map(function(v){ return v.signal('team', team).runAsync(); }));
  }
  var select = document.getElementById('team');
  select.addEventListener('change', function(){ show(select.value); });
  Promise.all(embeds).then(function(){ return show(select.value); }).then(function(){
    document.body.setAttribute('data-ready', 'yes');
  }, function(err){
    document.body.setAttribute('data-ready', 'error');
    console.error(err);
  });
})();
"""


def _fmt_day(t: datetime | None) -> str:
    return t.strftime("%d %b %Y").lstrip("0") if t else "-"


def render(d: Data, bundle: str, generated: datetime | None = None) -> str:
    """The whole page as one string."""
    generated = generated or datetime.now(UTC)
    secs = sections(d)
    figs = figures(d)
    for s in secs:  # a chart with no data at all says so instead of drawing empty axes
        if s.spec is not None and not any(s.spec.get("datasets", {}).values()):
            s.spec, s.html = None, "<p class=empty>Nothing in this period.</p>"
    specs = {s.key: s.spec for s in secs if s.spec is not None}
    options = "".join(f'<option value="{html.escape(t)}">{html.escape("all teams" if t == ALL else t)}</option>'
                      for t in [ALL, *d.teams])
    cards = "".join(f'<div class=cards data-team="{html.escape(r["team"])}">{_cards(r)}</div>'
                    for r in figs.iter_rows(named=True))
    body = []
    for s in secs:
        inner = f'<div class=chart id="chart-{s.key}"></div>' if s.spec is not None else s.html
        note = f"<p class=note>{html.escape(s.note)}</p>" if s.note else ""
        body.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2><p class=how>{html.escape(s.how)}</p>'
                    f"{inner}{note}<p class=src>From {html.escape(s.source)}.</p></section>")
    privacy = (f"Teams with fewer than {d.min_group_size} members appear as \u201cother\u201d, never by name"
               + ("; people appear as pseudonyms." if d.pseudonymized else "."))
    as_of = d.as_of.astimezone(UTC)
    specs_json = json.dumps(specs, separators=(",", ":"), default=str).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>How work flows: {html.escape(_fmt_day(d.start))} to {html.escape(_fmt_day(as_of))}</title>
<style>{CSS}</style></head>
<body><main>
<h1>How work flows</h1>
<p class=meta>Period: <b>{html.escape(_fmt_day(d.start))} to {html.escape(_fmt_day(as_of))}</b> (the last {d.weeks} weeks).
Measured at {html.escape(as_of.strftime("%Y-%m-%d %H:%M UTC"))}; data since {html.escape(_fmt_day(d.first_item_at))}.</p>
<p class=meta>Durations are hours under two days and days above; distributions show the median and the 85th
percentile (p85), because a few outliers make a mean meaningless. {html.escape(privacy)}</p>
<div class=controls><label for=team>Team: </label><select id=team>{options}</select>
<span class=chosen id=chosen>all teams</span></div>
{cards}
{"".join(body)}
<footer>Generated {html.escape(generated.strftime("%Y-%m-%d %H:%M UTC"))} by flowlens from the published
warehouse (docs/bi.md). Calendar time throughout; the marts also hold business time.</footer>
</main>
<script id=specs type="application/json">{specs_json}</script>
<script>{bundle}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(published: str | os.PathLike, out: str | os.PathLike, cfg: Config | None = None, *,
                 weeks: int | None = None, cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """Write report.html (atomically, mode 0640) from the published warehouse; returns the team headline rows.

    `weeks`: the period, else the configuration's `report.weeks`, else 12. `cache_dir` keeps the bundled
    chart libraries (default: `.cache` beside `out`).
    """
    out = Path(out)
    if weeks is None:
        weeks = cfg.report.weeks if cfg is not None else DEFAULT_WEEKS
    d = load(published, weeks)
    page = render(d, vega_bundle(cache_dir if cache_dir is not None else out.parent / ".cache"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.chmod(tmp, 0o640)
    os.replace(tmp, out)
    rows, _ = read_published(published)
    return rows
