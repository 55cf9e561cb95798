"""Asset checks on the models, evaluated in the step that builds them (same connection, no second lock).

Blocking (wrong data must not be published): unique keys, possible durations, row counts not collapsing, a mart
not empty while its sources hold rows.
Warning only: statuses mapped by their Jira category alone (listed, so someone can map them).

Plausibility checks are SQL: `sql/checks/NAME.sql` returns the offending rows (none = pass); its header names
the asset it belongs to, its severity and what it asserts:
    -- asset: marts.item_flow
    -- severity: blocking | warning
    -- description: every pull request GitHub reports merged is finished
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg

INTERVALS = [("started_at", "finished_at"), ("started_at", "ended_at"), ("requested_at", "decided_at")]
COLLAPSE_MIN_PREVIOUS = 20  # below this many rows, a drop is noise, not a collapse
COLLAPSE_SHARE = 0.5  # fewer than half the previous run's rows: something went wrong upstream
STATUS_MAP = "core.status_map"
# One row per work item: empty while the load brought anything at all (any raw.* table holds rows) means the
# items were never extracted or got lost on the way; publishing it would show an empty organisation.
ITEM_GRAIN = "marts.item_flow"
CHECKS_DIR = Path(__file__).resolve().parent.parent / "sql" / "checks"
SAMPLE_ROWS = 20  # offending rows shown in a failed check's metadata
_HEADER = re.compile(r"^--\s*(asset|severity|description):\s*(.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SqlCheck:
    name: str  # the file's stem
    asset: str  # schema.table the check belongs to
    blocking: bool
    description: str
    sql: str


@cache
def sql_checks(checks_dir: Path = CHECKS_DIR) -> tuple[SqlCheck, ...]:
    """Every `sql/checks/*.sql`, parsed from its header."""
    out = []
    for f in sorted(checks_dir.glob("*.sql")):
        text = f.read_text(encoding="utf-8")
        head = dict(_HEADER.findall(text))
        if "asset" not in head or head.get("severity") not in ("blocking", "warning"):
            raise ValueError(f"{f}: needs `-- asset: schema.table` and `-- severity: blocking|warning` headers")
        out.append(SqlCheck(f.stem, head["asset"], head["severity"] == "blocking", head.get("description", ""),
                            text))
    return tuple(out)


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(name.split(".", 1))


def check_specs(models: list[Any]) -> list[dg.AssetCheckSpec]:
    specs = []
    for m in models:
        k = _key(m.name)
        if m.key:
            specs.append(dg.AssetCheckSpec("keys_unique", asset=k, blocking=True,
                                           description=f"no two rows share the key of {m.name}"))
        if m.layer == "marts":
            specs.append(dg.AssetCheckSpec("durations_valid", asset=k, blocking=True,
                                           description="no negative durations, business time never above "
                                                       "calendar time, no interval ending before it starts"))
            specs.append(dg.AssetCheckSpec("row_count_stable", asset=k, blocking=True,
                                           description="the row count did not collapse against the previous run"))
            specs.append(dg.AssetCheckSpec("not_empty", asset=k, blocking=True, description=(
                "not empty while the load brought rows (raw.*)" if m.name == ITEM_GRAIN else
                "not empty while every table it reads holds rows")))
        if m.name == STATUS_MAP:
            specs.append(dg.AssetCheckSpec("statuses_mapped", asset=k, blocking=False,
                                           description="every status is mapped by name or pattern, not only by "
                                                       "its Jira category"))
        specs += [dg.AssetCheckSpec(c.name, asset=k, blocking=c.blocking, description=c.description)
                  for c in sql_checks() if c.asset == m.name]
    return specs


def _columns(con: Any, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    return [r[0] for r in con.execute("select column_name from information_schema.columns where table_schema = ? "
                                      "and table_name = ? order by ordinal_position", [schema, name]).fetchall()]


def _result(name: str, table: str, passed: bool, blocking: bool, **metadata: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=name, asset_key=_key(table), passed=passed, metadata=metadata,
                               severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN)


def keys_unique(con: Any, table: str, key: tuple[str, ...]) -> dg.AssetCheckResult:
    """The key a model declares (`-- key:` in its SQL header) identifies its rows."""
    cols = _columns(con, table)
    if missing := [k for k in key if k not in cols]:
        return _result("keys_unique", table, False, True, error=f"key columns {missing} not in {cols}")
    quoted = ", ".join(f'"{k}"' for k in key)
    dupes = con.execute(f"select count(*) from (select {quoted} from {table} group by all having count(*) > 1)"
                        ).fetchone()[0]
    return _result("keys_unique", table, dupes == 0, True, key=", ".join(key), duplicate_keys=int(dupes))


def durations_valid(con: Any, table: str) -> dg.AssetCheckResult:
    cols = set(_columns(con, table))
    tests = [f'"{c}" < 0' for c in sorted(cols) if c.endswith("_s")]
    for prefix in sorted({c[: -len("business_s")] for c in cols if c.endswith("business_s")}):
        if f"{prefix}calendar_s" in cols:
            tests.append(f'"{prefix}business_s" > "{prefix}calendar_s" + 1')
    tests += [f'"{b}" < "{a}"' for a, b in INTERVALS if a in cols and b in cols]
    if "flow_efficiency" in cols:
        tests.append("flow_efficiency not between 0 and 1")
    bad = {t: con.execute(f"select count(*) from {table} where {t}").fetchone()[0] for t in tests}
    bad = {t: int(n) for t, n in bad.items() if n}
    return _result("durations_valid", table, not bad, True, rules_tested=len(tests), rows_violating=sum(bad.values()),
                   violations=dg.MetadataValue.json(bad))


def row_count_stable(instance: dg.DagsterInstance, table: str, rows: int) -> dg.AssetCheckResult:
    event = instance.get_latest_materialization_event(_key(table))
    previous = None
    if event is not None and event.asset_materialization is not None:
        md = event.asset_materialization.metadata.get("rows")
        previous = int(md.value) if md is not None else None
    ok = previous is None or previous < COLLAPSE_MIN_PREVIOUS or rows >= previous * COLLAPSE_SHARE
    return _result("row_count_stable", table, ok, True, rows=rows, previous_rows=previous if previous is not None
                   else dg.MetadataValue.null())


def _has_rows(con: Any, table: str) -> bool:
    return con.execute(f"select exists (from {table})").fetchone()[0]


def not_empty(con: Any, model: Any, rows: int) -> dg.AssetCheckResult:
    """A mart is not empty while its sources hold rows. Its sources: the tables it reads, all of them holding rows
    (then an empty mart lost everything in a join or a filter); for the item grain (marts.item_flow), any payload
    the load brought (raw.*), so a run that extracted site data but no items is not published as an empty
    organisation."""
    if rows > 0:
        return _result("not_empty", model.name, True, True, rows=rows)
    if model.name == ITEM_GRAIN:
        raw = [f"raw.{t}" for (t,) in con.execute(  # the payload tables, not the load's bookkeeping
            "select table_name from duckdb_columns() where schema_name = 'raw' and column_name = 'payload' "
            "order by table_name").fetchall()]
        full = [t for t in raw if _has_rows(con, t)]
        return _result("not_empty", model.name, not full, True, rows=rows, sources_with_rows=len(full),
                       sources=dg.MetadataValue.md("\n".join(f"- {t}" for t in full) or "none"))
    sources = list(model.depends_on)
    empty = [t for t in sources if not _has_rows(con, t)]
    return _result("not_empty", model.name, bool(empty) or not sources, True, rows=rows, sources=", ".join(sources),
                   empty_sources=", ".join(empty) or "none")


def statuses_mapped(con: Any) -> dg.AssetCheckResult:
    rows = con.execute("select project_key, status_name, status_category, state from core.unmapped_statuses"
                       ).fetchall()
    listed = [f"{p}: {s} ({c} -> {st})" for p, s, c, st in rows]
    return _result("statuses_mapped", STATUS_MAP, not rows, False, unmapped=len(rows),
                   statuses=dg.MetadataValue.md("\n".join(f"- {x}" for x in listed) or "none"))


def sql_check(con: Any, check: SqlCheck) -> dg.AssetCheckResult:
    """Runs a `sql/checks` query: it passes when it returns no rows; the first rows are listed."""
    cur = con.execute(f"select * from ({check.sql.strip().rstrip(';')}) as offending")
    cols = [d[0] for d in cur.description]
    found = cur.fetchall()
    sample = "\n".join("- " + ", ".join(f"{c}={v}" for c, v in zip(cols, r, strict=True))
                       for r in found[:SAMPLE_ROWS])
    return _result(check.name, check.asset, not found, check.blocking, offending_rows=len(found),
                   rows=dg.MetadataValue.md(sample or "none"))


def evaluate(con: Any, instance: dg.DagsterInstance, models: list[Any], rows: dict[str, int]
             ) -> list[dg.AssetCheckResult]:
    """Every check of these models (call before the new materializations are recorded)."""
    out = []
    for m in models:
        if m.name not in rows:
            continue
        if m.key:
            out.append(keys_unique(con, m.name, m.key))
        if m.layer == "marts":
            out.append(durations_valid(con, m.name))
            out.append(row_count_stable(instance, m.name, rows[m.name]))
            out.append(not_empty(con, m, rows[m.name]))
        if m.name == STATUS_MAP:
            out.append(statuses_mapped(con))
        out += [sql_check(con, c) for c in sql_checks() if c.asset == m.name]
    return out
