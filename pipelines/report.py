"""The headline metrics per team (from the marts), as rows, a terminal table and a self-contained report.html."""

from __future__ import annotations

import html
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# (key, label) in display order.
COLUMNS = [("team", "team"), ("items_finished", "items done"), ("handoffs_per_item", "handoffs/item"),
           ("approval_wait_p85_h", "approval wait p85 (h)"), ("decision_latency_p85_h", "decision latency p85 (h)"),
           ("flow_efficiency", "flow efficiency"), ("cycle_time_p85_d", "cycle time p85 (d)")]

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


def read_published(published: str | os.PathLike) -> tuple[list[dict], dict[str, float]]:
    import duckdb

    con = duckdb.connect(str(published), read_only=True)
    try:
        return team_rows(con), overall(con)
    finally:
        con.close()


def render(rows: list[dict], totals: dict[str, float], generated: datetime) -> str:
    """The report page: inline CSS, no scripts, nothing fetched."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(k)))}</td>" for k, _ in COLUMNS) + "</tr>"
                   for r in rows)
    cards = "".join(f"<div class=card><div class=v>{html.escape(fmt(totals.get(k)))}</div>"
                    f"<div class=l>{html.escape(label)}</div></div>"
                    for k, label in COLUMNS if k in totals)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowlens report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} h1{{font-weight:600}}
table{{border-collapse:collapse;margin-top:1rem}} th,td{{padding:.4rem .8rem;border-bottom:1px solid #ddd}}
td{{text-align:right}} td:first-child,th:first-child{{text-align:left}} th{{background:#f4f4f4}}
.cards{{display:flex;gap:1rem;flex-wrap:wrap}} .card{{border:1px solid #ddd;border-radius:6px;padding:.8rem 1.2rem}}
.v{{font-size:1.6rem;font-weight:600}} .l{{color:#666;font-size:.85rem}} footer{{margin-top:2rem;color:#888}}
</style></head><body>
<h1>How work flows</h1>
<div class=cards>{cards}</div>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<footer>Generated {html.escape(generated.isoformat(timespec="seconds"))} from the published warehouse.
Waits are calendar time of closed waits; flow efficiency = active / (active + waiting) over finished items.
Teams smaller than the privacy minimum are shown as "other".</footer>
</body></html>
"""


def write_report(published: str | os.PathLike, out: str | os.PathLike, cfg: Any = None) -> list[dict]:
    """Write report.html (atomically) from the published warehouse; returns the team rows."""
    rows, totals = read_published(published)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(render(rows, totals, datetime.now(UTC)), encoding="utf-8")
    os.replace(tmp, out)
    return rows
