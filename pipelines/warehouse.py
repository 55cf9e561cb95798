"""The warehouse: load landed pages into raw.*, run the SQL models in sql/ in dependency order."""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import duckdb

from landing_format import extracts, stream_of
from pipelines.config import WEEKDAYS, Config
from pipelines.sqlmodels import LAYERS, Model, ModelError, load_models  # noqa: F401 - re-exported

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class WarehouseError(Exception):
    """A load or model run failed; the warehouse is as it was before."""


@dataclass
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)  # new raw rows per "source__stream"
    pages: int = 0
    extracts_loaded: list[str] = field(default_factory=list)  # extract ids completed by this load
    cursors_advanced: dict[tuple[str, str], dict] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)  # rows dropped by a full refresh, per table
    seconds: float = 0.0


def sql_text(rel: str) -> str:
    return (SQL_DIR / rel).read_text(encoding="utf-8")


@contextmanager
def connect(con_or_path: duckdb.DuckDBPyConnection | str | os.PathLike,
            read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is always closed (unless the caller passed one in: then it is theirs)."""
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        _session(con_or_path)
        yield con_or_path
        return
    Path(con_or_path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(con_or_path), read_only=read_only)
    try:
        _session(con)
        yield con
    finally:
        con.close()


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" in microseconds, or "max <period>"


def usable_cpus(cpu_max: Path = CPU_MAX) -> int:
    """The cores this process may use: the machine's, capped by the container's CPU quota (a Kubernetes limit of
    2 on a 64-core node is 2), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _session(con: duckdb.DuckDBPyConnection) -> None:
    # SQL casts and week boundaries are in the session time zone: always UTC here.
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    con.execute("set preserve_insertion_order = false")  # less memory for big loads; ORDER BY still holds
    # DuckDB spills to disk (next to the database file) beyond this; its own default is 80% of the machine.
    # A million-item rebuild runs within 7GB (benchmarks/bench_transform.py).
    limit = os.environ.get("FLOWLENS_DUCKDB_MEMORY_LIMIT")
    if limit:
        con.execute("set memory_limit = ?", [limit])
    # One thread more than usable cores (the cgroup quota counts): DuckDB's workers also wait on reads, writes and spills. On 2 cores a million-
    # item rebuild took 119.0 s with 3 threads against 120.5 s with 2 on cached pages, 116-119 s against 122-129 s
    # when pages had to be read, and 127 s with 4 (benchmarks/README.md).
    threads = os.environ.get("FLOWLENS_DUCKDB_THREADS") or str(usable_cpus() + 1)
    if not threads.isdigit() or int(threads) < 1:
        raise WarehouseError(f"FLOWLENS_DUCKDB_THREADS must be a whole number of threads, 1 or more (got {threads!r})")
    con.execute(f"set threads = {int(threads)}")
    temp = os.environ.get("FLOWLENS_DUCKDB_TEMP_DIRECTORY")
    if temp:
        con.execute("set temp_directory = ?", [temp])


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


# ---------------------------------------------------------------- load


def _landed(root: Path) -> tuple[list[dict], list[dict]]:
    """Every page file and every manifest under the landing root (layout: landing_format)."""
    pages, manifests = [], []
    for ext in extracts(root):
        if ext.manifest is not None:
            manifests.append({**ext.manifest, "source": ext.source, "partition": ext.partition,
                              "extract_id": ext.extract_id})
        for page in ext.pages:
            pages.append({"path": str(page), "rel": str(page.relative_to(root)), "source": ext.source,
                          "partition": ext.partition, "extract_id": ext.extract_id, "stream": stream_of(page)})
    return pages, manifests


def _stream_keys_sql(source: str, stream: str) -> str:
    """The per-stream SELECT giving (id, updated, payload, filename) from the temp table _pages."""
    f = SQL_DIR / "raw" / "streams" / f"{source}__{stream}.sql"
    return (f if f.exists() else SQL_DIR / "raw" / "streams" / "_default.sql").read_text(encoding="utf-8")


def load(con_or_path: duckdb.DuckDBPyConnection | str | os.PathLike, landing_root: str | os.PathLike,
         *, fail_after_pages: int | None = None, progress: Callable[[dict], None] | None = None,
         replace: Iterable[str] = ()) -> LoadResult:
    """Load every not-yet-loaded landed page into raw.* and advance cursors, in one transaction.

    The newest fetch of a version (id, updated) wins. For each source in `replace` (a full refresh), a
    complete extract replaces what was loaded for its partition before it: older rows of that partition go.
    `progress` gets one dict per stream inserted; `fail_after_pages` injects a failure after that many
    streams were inserted (tests only).
    """
    t0 = time.perf_counter()
    root = Path(landing_root)
    result = LoadResult()
    with connect(con_or_path) as con:
        con.execute(sql_text("raw/schema.sql"))
        pages, manifests = _landed(root)
        done = {r[0] for r in con.execute("select path from raw.loaded_files").fetchall()}
        known = set(con.execute("select source, partition, extract_id from raw.extracts").fetchall())
        new_pages = [p for p in pages if p["rel"] not in done]
        new_manifests = sorted((m for m in manifests if (m["source"], m["partition"], m["extract_id"]) not in known),
                               key=lambda m: m["extract_id"])
        by_stream: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for p in new_pages:
            by_stream[(p["source"], p["stream"])].append(p)
        insert_tpl = sql_text("raw/insert_pages.sql")
        replace_older = sql_text("raw/replace_older.sql")
        loaded_at = datetime.now(UTC)
        try:
            with transaction(con):
                for n, ((source, stream), files) in enumerate(sorted(by_stream.items())):
                    table = f"{source}__{stream}"
                    if not (_NAME.match(source) and _NAME.match(stream.replace("-", "_"))):
                        raise WarehouseError(f"unexpected landing stream name {table!r}")
                    table = table.replace("-", "_")
                    con.execute(sql_text("raw/stream_table.sql").replace("{table}", table))
                    con.execute("create or replace temp table _files (filename varchar, partition varchar,"
                                " extract_id varchar)")
                    con.executemany("insert into _files values (?, ?, ?)",
                                    [(f["path"], f["partition"], f["extract_id"]) for f in files])
                    # a view, so the pages stream into the insert instead of being held in memory first
                    listed = ", ".join("'" + f["path"].replace("'", "''") + "'" for f in files)
                    con.execute("create or replace temp view _pages as select json as payload, filename"
                                f" from read_ndjson_objects([{listed}], filename = true)")
                    if fail_after_pages is not None and n >= fail_after_pages:
                        raise WarehouseError("injected failure")
                    before = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
                    con.execute(insert_tpl.replace("{table}", table).replace("{keys}",
                                _stream_keys_sql(source, stream)), [loaded_at])
                    con.execute(replace_older.replace("{table}", table), [loaded_at])
                    after = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
                    result.rows[table] = after - before
                    con.executemany("insert into raw.loaded_files values (?, ?, ?, ?, ?, ?)",
                                    [(f["rel"], f["source"], f["partition"], f["extract_id"], f["stream"],
                                      loaded_at) for f in files])
                    result.pages += len(files)
                    if progress:
                        progress({"table": f"raw.{table}", "rows": after - before, "pages": len(files),
                                  "streams_done": n + 1, "streams": len(by_stream),
                                  "seconds": time.perf_counter() - t0})
                advance = sql_text("raw/advance_cursor.sql")
                for m in new_manifests:
                    complete = bool(m.get("complete"))
                    con.execute("insert into raw.extracts values (?, ?, ?, ?, ?, ?)",
                                [m["source"], m["partition"], m["extract_id"], complete,
                                 json.dumps(m), loaded_at])
                    if complete and m.get("cursor") is not None:
                        con.execute(advance, [m["source"], m["partition"], json.dumps(m["cursor"]),
                                              m["extract_id"], loaded_at])
                        result.cursors_advanced[(m["source"], m["partition"])] = m["cursor"]
                    result.extracts_loaded.append(m["extract_id"])
                _replace_partitions(con, new_manifests, set(replace), result)
                con.execute("drop view if exists _pages")
                con.execute("drop table if exists _files")
        except duckdb.Error as e:
            raise WarehouseError(f"load failed, warehouse unchanged: {str(e).splitlines()[0]}") from e
    result.seconds = time.perf_counter() - t0
    return result


def _replace_partitions(con: duckdb.DuckDBPyConnection, manifests: list[dict], sources: set[str],
                        result: LoadResult) -> None:
    """Full refresh: the newest complete extract of each (source, partition) replaces the rows loaded before it."""
    newest: dict[tuple[str, str], str] = {}
    for m in manifests:
        if m["source"] in sources and m.get("complete"):
            key = (m["source"], m["partition"])
            newest[key] = max(newest.get(key, ""), m["extract_id"])
    if not newest:
        return
    tables = [r[0] for r in con.execute("select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()]
    tpl = sql_text("raw/replace_partition.sql")
    for (source, partition), extract_id in sorted(newest.items()):
        for table in sorted(t for t in tables if t.startswith(f"{source}__")):
            gone = con.execute(tpl.replace("{table}", table), [partition, extract_id]).fetchone()[0]
            if gone:
                result.replaced[table] = result.replaced.get(table, 0) + gone


def read_cursors(path: duckdb.DuckDBPyConnection | str | os.PathLike) -> dict[tuple[str, str], dict]:
    """The stored cursor of every (source, partition) whose extract completed and was loaded."""
    if not isinstance(path, duckdb.DuckDBPyConnection) and not Path(path).exists():
        return {}
    with connect(path, read_only=True) as con:
        exists = con.execute("select count(*) from duckdb_tables() where schema_name = 'raw' "
                             "and table_name = 'cursors'").fetchone()[0]
        if not exists:
            return {}
        rows = con.execute("select source, partition, cursor::varchar from raw.cursors").fetchall()
    return {(s, p): json.loads(c) for s, p, c in rows}


# ---------------------------------------------------------------- models


def models(sql_dir: Path | None = None) -> list[Model]:
    """Every model under sql/{staging,core,marts}, in dependency order (read from the SQL: sqlmodels.py)."""
    return load_models(sql_dir or SQL_DIR)


def resolve_as_of(as_of: datetime | str | None = None) -> datetime:
    """`as_of` as given, else FLOWLENS_AS_OF, else now; always aware UTC, whole microseconds."""
    value: Any = as_of if as_of is not None else os.environ.get("FLOWLENS_AS_OF")
    if value is None or value == "":
        return datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise WarehouseError(f"FLOWLENS_AS_OF: not an ISO 8601 instant: {value!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _fill_config(con: duckdb.DuckDBPyConnection, cfg: Config, as_of: datetime) -> None:
    """The config schema: what flowlens.toml says, as tables SQL can join."""
    con.execute(sql_text("config/schema.sql"))

    def put(table: str, rows: list[tuple]) -> None:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"insert into config.{table} values ({marks})", rows)

    put("run", [(as_of,)])
    sm = cfg.status_mapping
    put("status_patterns", [(i, p, s) for i, (p, s) in enumerate(sm.all_patterns())])
    put("status_names", [(proj, name, state) for proj, names in sm.projects.items()
                         for name, state in names.items()])
    put("github_labels", [(label, state) for label, state in sm.github_labels.items()])
    put("decision_labels", [(label,) for label in cfg.decisions.github_labels])
    put("bots", [(n,) for n in cfg.bots.names])
    put("identities", [(i.jira, i.github) for i in cfg.identities])
    put("teams", [(t.key, t.name or t.key, t.calendar, t.github_team) for t in cfg.teams])
    put("project_teams", [("jira", p, t.key) for t in cfg.teams for p in t.jira_projects]
        + [("github", r, t.key) for t in cfg.teams for r in t.github_repositories])

    def instant(d: date | datetime | None) -> datetime | None:
        if d is None:
            return None
        if not isinstance(d, datetime):
            d = datetime.combine(d, dtime(0))
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    put("memberships", [(m.person, t.key, instant(m.valid_from), instant(m.valid_to))
                        for t in cfg.teams for m in t.members])
    cals = cfg.calendar_table()
    put("calendars", [(name, c.timezone, [WEEKDAYS.index(d) + 1 for d in c.workdays],
                       c.hours[0], c.hours[1]) for name, c in cals.items()])
    put("holidays", [(name, h) for name, c in cals.items() for h in c.holidays])
    put("settings", [("min_group_size", str(cfg.privacy.min_group_size))]
        + [("issue_key_pattern", cfg.sources.jira.issue_key_pattern)] * bool(cfg.sources.jira.issue_key_pattern))


def run_models(path: duckdb.DuckDBPyConnection | str | os.PathLike, config: Config | None = None,
               as_of: datetime | str | None = None, layers: list[str] | tuple[str, ...] | None = None,
               only: list[str] | None = None,
               progress: Callable[[dict], None] | None = None) -> list[tuple[str, int, float]]:
    """Fill `config.*`, then build every model (of `layers`, or named in `only`) in one transaction.

    `progress` gets {"model", "rows", "seconds"} after each model is built (not yet committed).
    """
    cfg = config or Config()
    stamp = resolve_as_of(as_of)
    out: list[tuple[str, int, float]] = []
    with connect(path) as con:
        con.execute(sql_text("raw/schema.sql"))
        try:
            with transaction(con):
                _fill_config(con, cfg, stamp)
                for m in models():
                    if (layers is not None and m.layer not in layers) or (only is not None and m.name not in only):
                        continue
                    t0 = time.perf_counter()
                    try:
                        con.execute(m.path.read_text(encoding="utf-8"))
                    except duckdb.Error as e:
                        raise WarehouseError(f"model {m.name} ({m.path.name}) failed: "
                                             f"{str(e).splitlines()[0]}") from e
                    rows = con.execute(f"select count(*) from {m.name}").fetchone()[0]
                    out.append((m.name, rows, time.perf_counter() - t0))
                    if progress:
                        progress({"model": m.name, "rows": rows, "seconds": out[-1][2]})
        except duckdb.Error as e:
            raise WarehouseError(f"model run failed, warehouse unchanged: {str(e).splitlines()[0]}") from e
    return out
