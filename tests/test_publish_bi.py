"""The published file is for BI tools: DuckDB 1.x opens it, it holds the marts and dimensions only, no e-mail."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import duckdb
import pytest

from pipelines.publish import publish
from tests.published import Built, duckdb_1x


def tables(path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> [(column, type)] of every table and view."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, col, dtype in con.execute(
                "select schema_name, table_name, column_name, data_type from duckdb_columns() "
                "where database_name = current_database() order by schema_name, table_name, column_index").fetchall():
            out.setdefault((schema, table), []).append((col, dtype))
        return out
    finally:
        con.close()


def test_published_holds_marts_and_dimensions_only(bi: Built) -> None:
    working, published = tables(bi.warehouse), tables(bi.published)
    assert {s for s, _ in working} >= {"raw", "staging", "core", "config", "marts"}  # the working file keeps all
    assert {s for s, _ in published} == {"marts", "dims", "meta"}
    assert {t for s, t in published if s == "marts"} == {t for s, t in working if s == "marts"}
    assert {t for s, t in published if s == "dims"} == {"people", "teams", "calendars"}
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        assert con.execute("select count(*) from meta.snapshot").fetchone()[0] == 1
        as_of, version = con.execute("select as_of, storage_version from meta.snapshot").fetchone()
        assert version == "v1.0.0"
        # the marts keep their documentation for BI users
        assert con.execute("select comment from duckdb_tables() where table_name = 'wait_intervals'").fetchone()[0]
        assert con.execute("select count(*) from duckdb_columns() where table_name = 'item_flow' "
                           "and comment is not null").fetchone()[0] > 10
    finally:
        con.close()
    con = duckdb.connect(str(bi.warehouse), read_only=True)
    try:
        assert con.execute("select as_of from config.run").fetchone()[0] == as_of
    finally:
        con.close()


def text_columns(path) -> list[tuple[str, str, str]]:
    return [(s, t, c) for (s, t), cols in tables(path).items() for c, dtype in cols if dtype in ("VARCHAR", "JSON")
            or dtype.startswith("VARCHAR[")]


def count_at_signs(path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = {}
        for s, t, c in text_columns(path):
            n = con.execute(f'select count(*) from "{s}"."{t}" where contains("{c}"::varchar, \'@\')').fetchone()[0]
            if n:
                found[f"{s}.{t}.{c}"] = n
        return found
    finally:
        con.close()


def test_no_at_sign_in_any_text_column(bi: Built) -> None:
    assert count_at_signs(bi.warehouse), "the working warehouse holds e-mail addresses (raw payloads)"
    assert count_at_signs(bi.published) == {}


def test_titles_lose_email_addresses_and_review_bodies_stay_home(bi: Built, tmp_path) -> None:
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(bi.warehouse, wh)
    con = duckdb.connect(str(wh))
    con.execute("update marts.item_flow set title = title || ' (from ana.souza+jira@example.co.uk)' "
                "where item_id in (select item_id from marts.item_flow order by item_id limit 3)")
    con.execute("update marts.approval_waits set review_body = 'LGTM @bob' where review_body is null")
    con.close()
    out = tmp_path / "pub" / "flowlens.duckdb"
    publish(wh, out, bi.config)
    assert count_at_signs(out) == {}
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("select count(*) from marts.item_flow where title like '%(from (e-mail removed))'"
                           ).fetchone()[0] == 3
        cols = [c for c, in con.execute("select column_name from duckdb_columns() where table_name = 'approval_waits'"
                                        ).fetchall()]
        assert "review_body" not in cols and "requested_of" in cols
    finally:
        con.close()


def test_duckdb_1x_opens_the_published_file_and_queries_every_table(bi: Built) -> None:
    cli = duckdb_1x()
    version = subprocess.run([str(cli), "-version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1."), version
    names = sorted(tables(bi.published))
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        expected = {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in names}
    finally:
        con.close()
    sql = " union all ".join(f"select '{s}.{t}' as name, count(*) as n from \"{s}\".\"{t}\"" for s, t in names)
    proc = subprocess.run([str(cli), "-readonly", "-json", str(bi.published), "-c", sql + ";"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = {r["name"]: r["n"] for r in json.loads(proc.stdout)}
    assert got == expected
    assert got["marts.item_flow"] > 0 and got["marts.wait_intervals"] > 0
    # a read with types: timestamps with time zone, lists, booleans
    proc = subprocess.run([str(cli), "-readonly", "-json", str(bi.published), "-c",
                           ("select (select max(finished_at) from marts.item_flow) as f, "
                            "(select max(len(holidays)) from dims.calendars) as h, "
                            "(select bool_or(is_open) from marts.wait_intervals) as o;")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["f"].startswith("20")


def test_published_file_is_not_world_readable(bi: Built) -> None:
    mode = stat.S_IMODE(os.stat(bi.published).st_mode)
    assert mode & stat.S_IRWXO == 0, oct(mode)
    assert mode & stat.S_IRUSR


def test_a_type_newer_storage_needs_picks_that_storage_version(bi: Built, tmp_path) -> None:
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(bi.warehouse, wh)
    con = duckdb.connect(str(wh))
    con.execute("create table marts.with_variant as select 1::variant as v")
    con.close()
    info = publish(wh, tmp_path / "pub" / "flowlens.duckdb", bi.config)
    assert info["storage_version"] == "v1.5.0"
    assert [p.name for p in (tmp_path / "pub").iterdir()] == ["flowlens.duckdb"]


@pytest.mark.parametrize("query", ["select count(*) from raw.jira__issues", "select * from config.run",
                                   "select * from core.people", "select * from staging.stg_jira__users"])
def test_raw_staging_core_and_config_are_not_published(bi: Built, query: str) -> None:
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        with pytest.raises(duckdb.CatalogException):
            con.execute(query)
    finally:
        con.close()


def test_parquet_copies_of_every_table_swap_in_with_the_snapshot(bi: Built, tmp_path) -> None:
    cfg = bi.config.model_copy(update={"publish": bi.config.publish.model_copy(update={"parquet": True})})
    out = tmp_path / "published" / "flowlens.duckdb"
    publish(bi.warehouse, out, cfg)
    first = os.readlink(out.parent / "parquet")
    info = publish(bi.warehouse, out, cfg)
    assert info["parquet"] == str(out.parent / "parquet")
    second = os.readlink(out.parent / "parquet")
    assert second != first and [p.name for p in out.parent.glob(".parquet-*")] == [second]  # the old one is gone
    con = duckdb.connect(str(out), read_only=True)
    try:
        for s, t in tables(out):
            f = out.parent / "parquet" / s / f"{t}.parquet"
            assert con.execute(f"select count(*) from read_parquet('{f}')").fetchone()[0] == \
                con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0], f
            assert stat.S_IMODE(os.stat(f).st_mode) & stat.S_IRWXO == 0
            # the whole row as text: no e-mail address, as in the DuckDB file
            assert con.execute(f"select count(*) from read_parquet('{f}') as r where contains(r::varchar, '@')"
                               ).fetchone()[0] == 0
    finally:
        con.close()
    publish(bi.warehouse, out, bi.config)  # turned off again: no stale copy left
    assert sorted(p.name for p in out.parent.iterdir()) == ["flowlens.duckdb"]
