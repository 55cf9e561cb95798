"""Credentials and the pseudonym key reach no file a run writes: landing, warehouses, report, Dagster storage, logs."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.run import run_all
from sandbox.server import Sandbox
from tests.test_pipeline_run import prepare

KEY = "pseudonym key for the secrets test, 0123456789"


def duckdb_hits(path, secrets: list[str]) -> list[str]:
    """Text and JSON columns of every table that contain a secret (DuckDB compresses strings, so bytes may hide them)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = con.execute("select schema_name, table_name, column_name from duckdb_columns() "
                           "where database_name = current_database() and (data_type in ('VARCHAR', 'JSON') "
                           "or data_type like '%VARCHAR%' or data_type like 'STRUCT%' or data_type like 'MAP%')"
                           ).fetchall()
        hits = []
        for s, t, c in cols:
            for secret in secrets:
                n = con.execute(f'select count(*) from "{s}"."{t}" where contains("{c}"::varchar, ?)', [secret]
                                ).fetchone()[0]
                if n:
                    hits.append(f"{s}.{t}.{c}")
        return hits
    finally:
        con.close()


@pytest.mark.parametrize("deployment", ["cloud"])
def test_no_secret_in_any_file_a_run_writes(tmp_path, monkeypatch, small_org, deployment) -> None:
    home = tmp_path / "home"
    with Sandbox(small_org, jira_deployment=deployment) as sb:
        config = prepare(monkeypatch, home, sb, small_org)
        config.write_text(config.read_text().replace("[privacy]\n", "[privacy]\npseudonymize = true\n"))
        monkeypatch.setenv("FLOWLENS_PSEUDONYM_KEY", KEY)
        summary = run_all(str(config), home)
        assert summary.ok, summary.errors
        secrets = [v for k, v in sb.env().items() if k in ("JIRA_API_TOKEN", "JIRA_PAT", "GITHUB_TOKEN")] + [KEY]
    assert len(secrets) == 3
    files = [p for p in home.rglob("*") if p.is_file()]
    kinds = {p.relative_to(home).parts[0] for p in files}
    assert {"landing", "warehouse.duckdb", "published", "report.html", "dagster"} <= kinds, kinds
    assert any(p.suffix in (".db", ".sqlite") or "storage" in p.parts for p in files)  # Dagster's storage
    leaks = [str(p.relative_to(home)) for p in files for s in secrets if s.encode() in p.read_bytes()]
    assert leaks == []
    con = duckdb.connect(str(home / "published" / "flowlens.duckdb"), read_only=True)
    try:
        assert con.execute("select pseudonymized from meta.snapshot").fetchone()[0] is True  # the key was used
    finally:
        con.close()
    for db in (home / "warehouse.duckdb", home / "published" / "flowlens.duckdb"):
        assert duckdb_hits(db, secrets) == [], db
    # the scan does find what is there: the sandbox's Jira user e-mail is in the raw payloads
    assert duckdb_hits(home / "warehouse.duckdb", [sb.env()["JIRA_EMAIL"]])
