"""Publish: write the BI snapshot (the marts and the dimensions, privacy applied) and rename it into place.

The copy holds `marts.*`, `dims.*` (people, teams, calendars) and `meta.snapshot`, never `raw`, `staging`,
`core` or `config`. It is written in the oldest DuckDB storage version that holds its types, so the DuckDB 1.x
drivers BI tools embed open it. Build, CHECKPOINT, close, fsync, os.replace: a reader sees the previous
snapshot or the new one, never a half-built one, and never holds a lock the pipeline needs (docs/design.md,
"Known traps").
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import PSEUDONYM_KEY_ENV, Config

SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "publish"
# Oldest first. v1.0.0 (storage number 64) opens in every DuckDB since 0.10; a type that needs newer storage
# makes DuckDB name the version it needs, and the publish retries with that one.
STORAGE_VERSIONS = ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0")
FILE_MODE = 0o640  # owner and group (a BI service account) read it; others do not
# Free text written by people that no published figure needs (fast_approvals already counts empty bodies).
DROPPED_COLUMNS = {"review_body"}
# Free text that stays, with e-mail addresses taken out.
SCRUBBED_COLUMNS = {"title"}
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"


class PublishError(Exception):
    """Publishing cannot go ahead; the message is one line saying what to do."""


def pseudonym_key(cfg: Config, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key of the keyed hashes: from the environment; None when it is not set (and not required)."""
    value = (environ if environ is not None else os.environ).get(PSEUDONYM_KEY_ENV, "")
    if cfg.privacy.pseudonymize and len(value) < 16:
        raise PublishError(f"privacy.pseudonymize = true needs {PSEUDONYM_KEY_ENV} in the environment: a secret of "
                           "16 or more characters, the same on every run (it is never stored)")
    return value.encode() if value else None


def pseudonym(key: bytes, person_id: str) -> str:
    """A stable keyed hash of a person id (HMAC-SHA256, 12 hex digits)."""
    return "person:" + hmac.new(key, person_id.encode(), hashlib.sha256).hexdigest()[:12]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flowlens")
    except PackageNotFoundError:
        return "unknown"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_team(name: str) -> bool:
    return name == "team" or name.endswith("_team")


def _person_columns(con: Any, table: str, columns: list[tuple[str, str]]) -> set[str]:
    """Text columns of a mart holding a hidden person id (or a comma-separated list of them) or a small GitHub team."""
    found = set()
    for name, dtype in columns:
        if dtype != "VARCHAR" or _is_team(name) or name in DROPPED_COLUMNS | SCRUBBED_COLUMNS:
            continue
        c = _q(name)
        hit = con.execute(
            f"select exists(select 1 from w.marts.{_q(table)} as t where t.{c} in (select id from pseudo)"
            f" or (t.{c} like '%,%' and split_part(t.{c}, ',', 1) in (select id from pseudo))"
            f" or (t.{c} like 'github-team:%/%' and split_part(t.{c}, '/', 2) in"
            f" (select github_team from small_teams)))").fetchone()[0]
        if hit:
            found.add(name)
    return found


def _mart_sql(table: str, columns: list[tuple[str, str]], persons: set[str]) -> str:
    """The published copy of one mart: team columns through the minimum group size, people through `pseudo`."""
    exprs, joins = [], []
    for i, (name, _dtype) in enumerate(columns):
        c = f"t.{_q(name)}"
        if name in DROPPED_COLUMNS:
            continue
        if name in SCRUBBED_COLUMNS:
            expr = f"regexp_replace({c}, {_lit(EMAIL)}, '(e-mail removed)', 'g')"
        elif _is_team(name) and _dtype == "VARCHAR":
            expr = f"case when {c} in (select team from small_teams) then 'other' else {c} end"
        elif name in persons:
            joins.append(f"left join pseudo as p{i} on p{i}.id = {c}")
            expr = (f"case when {c} like 'github-team:%/%' and split_part({c}, '/', 2) in "
                    f"(select github_team from small_teams) then 'github-team:other' "
                    f"when {c} like '%,%' then array_to_string(list_sort(list_transform(string_split({c}, ','), "
                    f"lambda x: coalesce(map_extract_value(pm.m, x), x))), ',') "
                    f"else coalesce(p{i}.pseudonym, {c}) end")
        else:
            exprs.append(c)
            continue
        exprs.append(f"{expr} as {_q(name)}")
    frm = f"w.marts.{_q(table)} as t"
    if persons:
        frm += " cross join (select map(list(id), list(pseudonym)) as m from pseudo) as pm"
    return (f"create table pub.marts.{_q(table)} as select {', '.join(exprs)} from {frm}"
            + "".join(" " + j for j in joins))


def _build(tmp: Path, src: Path, cfg: Config, key: bytes | None, version: str) -> dict:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach {_lit(str(src))} as w (read_only)")
        con.execute(f"attach {_lit(str(tmp))} as pub (storage_version {_lit(version)})")
        con.execute("set variable pseudonymize = ?", [cfg.privacy.pseudonymize])
        con.execute("set variable published_at = ?", [datetime.now(UTC)])
        con.execute("set variable storage_version = ?", [version])
        con.execute("set variable flowlens_version = ?", [_version()])
        con.execute("begin transaction")  # one commit, not one per statement
        con.execute((SQL_DIR / "privacy.sql").read_text(encoding="utf-8"))
        hidden = [pid for (pid,) in con.execute("select person_id from hidden_people").fetchall()]
        # Without a key (not pseudonymising, a small team's members only) a key of this publish alone: the
        # pseudonyms are unlinkable, and change from one publish to the next.
        k = key or secrets.token_bytes(32)
        con.execute("create temp table pseudo (id varchar, pseudonym varchar)")
        rows = {(pid, pseudonym(k, pid)) for pid in hidden}
        if rows:
            con.executemany("insert into pseudo values (?, ?)", sorted(rows))
        con.execute("create schema pub.marts")
        cols = con.execute("select table_name, column_name, data_type, comment from duckdb_columns() "
                           "where database_name = 'w' and schema_name = 'marts' "
                           "order by table_name, column_index").fetchall()
        tables: dict[str, list[tuple[str, str]]] = {}
        for table, name, dtype, _ in cols:
            tables.setdefault(table, []).append((name, dtype))
        comments = dict(con.execute(
            "select table_name, comment from duckdb_tables() where database_name = 'w' and schema_name = 'marts' "
            "union all select view_name, comment from duckdb_views() "
            "where database_name = 'w' and schema_name = 'marts'").fetchall())
        for table, columns in tables.items():
            con.execute(_mart_sql(table, columns, _person_columns(con, table, columns) if rows else set()))
            if comments.get(table):
                con.execute(f"comment on table pub.marts.{_q(table)} is {_lit(comments[table])}")
        for table, name, _, comment in cols:
            if comment and name not in DROPPED_COLUMNS:
                con.execute(f"comment on column pub.marts.{_q(table)}.{_q(name)} is {_lit(comment)}")
        con.execute((SQL_DIR / "dims.sql").read_text(encoding="utf-8"))
        con.execute("commit")
        con.execute("checkpoint pub")
        con.execute("detach pub")
        return {"marts": len(tables), "hidden_people": len(hidden)}
    finally:
        con.close()


def publish(warehouse: str | os.PathLike, published: str | os.PathLike, config: Config | None = None,
            environ: Mapping[str, str] | None = None) -> dict:
    """Write the BI snapshot of `warehouse` to a temp file beside `published`, then os.replace it into place."""
    import duckdb

    cfg = config or Config()
    key = pseudonym_key(cfg, environ)
    src, dst = Path(warehouse), Path(published)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    versions = list(STORAGE_VERSIONS)
    parquet: Path | None = None
    try:
        while True:
            version = versions.pop(0)
            try:
                built = _build(tmp, src, cfg, key, version)
                break
            except duckdb.InvalidInputException as e:  # "... not supported in storage versions prior to v1.5.0"
                needed = re.search(r"storage versions? prior to (v\d+\.\d+\.\d+)", str(e))
                if not needed or needed.group(1) not in versions:
                    raise
                versions = versions[versions.index(needed.group(1)):]
                for p in (tmp, tmp.with_name(tmp.name + ".wal")):
                    p.unlink(missing_ok=True)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check = duckdb.connect(str(tmp), read_only=True)  # a copy DuckDB cannot open is never published
        try:
            tables = check.execute("select count(*) from information_schema.tables "
                                   "where table_schema not in ('information_schema', 'pg_catalog')").fetchone()[0]
            parquet = _parquet(check, dst.parent) if cfg.publish.parquet else None
        finally:
            check.close()
        os.replace(tmp, dst)
    except BaseException:
        if parquet is not None:
            shutil.rmtree(parquet, ignore_errors=True)
        raise
    finally:
        for p in (tmp, tmp.with_name(tmp.name + ".wal")):
            p.unlink(missing_ok=True)
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if parquet is not None:
        _swap_parquet(dst.parent, parquet)
    elif (dst.parent / PARQUET).is_symlink():  # turned off: no stale copy beside the new snapshot
        (dst.parent / PARQUET).unlink()
        for old in dst.parent.glob(f".{PARQUET}-*"):
            shutil.rmtree(old, ignore_errors=True)
    return {"path": str(dst), "bytes": dst.stat().st_size, "tables": int(tables), "storage_version": version,
            **built, **({"parquet": str(dst.parent / PARQUET)} if parquet is not None else {})}


PARQUET = "parquet"  # published/parquet -> .parquet-<id>/, swapped in one rename


def _parquet(con: Any, folder: Path) -> Path:
    """Every table of the snapshot as <schema>/<table>.parquet in a new folder beside the published file."""
    out = folder / f".{PARQUET}-{uuid.uuid4().hex[:12]}"
    for schema, table in con.execute("select schema_name, table_name from duckdb_tables() "
                                     "where database_name = current_database() order by 1, 2").fetchall():
        (out / schema).mkdir(parents=True, exist_ok=True)
        con.execute(f"copy (select * from {_q(schema)}.{_q(table)}) to {_lit(str(out / schema / (table + '.parquet')))}"
                    " (format parquet, compression zstd)")
    for p in [out, *out.rglob("*")]:
        os.chmod(p, 0o750 if p.is_dir() else FILE_MODE)
    return out


def _swap_parquet(folder: Path, new: Path) -> None:
    """Point published/parquet at `new` with one rename of a symlink, then remove the older folders."""
    link = folder / PARQUET
    tmp = folder / f".{PARQUET}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(new.name, tmp)
    os.replace(tmp, link)
    for old in folder.glob(f".{PARQUET}-*"):
        if old != new and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)  # a reader that has a file open keeps reading it
