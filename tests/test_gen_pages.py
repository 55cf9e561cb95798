"""The sandbox's page writer lands what the connectors land: the same organisation both ways, one warehouse."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import duckdb

from landing_format import COMPACT, MANIFEST, TIMELINE_EVENTS, extracts
from pipelines.config import load_config
from pipelines.run import run_all
from pipelines.warehouse import load, run_models
from sandbox.gen_config import config_toml
from sandbox.gen_pages import land_store
from sandbox.generator import generate
from sandbox.server import Sandbox

AS_OF = "2026-01-01T00:00:00+00:00"
SCHEMAS = ("staging", "core", "marts")


def tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every staging, core and mart table or view, without the load's own `loaded_at`."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                            f"where table_schema in {SCHEMAS} order by 1").fetchall()
        return {n: con.execute(f"select * exclude (loaded_at) from {n} order by all").fetchall()
                if "loaded_at" in {c[0] for c in con.execute(f"describe {n}").fetchall()}
                else con.execute(f"select * from {n} order by all").fetchall() for (n,) in names}


def test_written_pages_build_the_warehouse_the_connectors_build(tmp_path, monkeypatch):
    store = generate("small", 1)
    # Every repository named (archived ones too): the writer lands them all, as such a configuration does.
    repos = ", ".join(f'"{r.full_name}"' for r in store.github_repos)
    config = tmp_path / "flowlens.toml"
    toml = re.sub(r"(?m)^repositories = .*\n", "", config_toml(store, "cloud"))
    config.write_text(re.sub(r"(?m)^organizations = .*$", f"repositories = [{repos}]", toml))
    for name in ("DAGSTER_HOME", "JIRA_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWLENS_AS_OF", AS_OF)
    with Sandbox(store) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        run = run_all(str(config), tmp_path / "home", out=io.StringIO())
        url = sb.url
    assert run.ok, run.errors
    assert run.partitions == {"jira": len(store.jira_projects), "github": len(store.github_repos)}

    written = tmp_path / "written"
    land_store(store, written / "landing", jira_base=url, github_base=url)  # the URLs in the records
    db = written / "w.duckdb"
    load(db, written / "landing")
    run_models(db, load_config(config), AS_OF)

    theirs, ours = tables(tmp_path / "home" / "warehouse.duckdb"), tables(db)
    assert set(ours) == set(theirs) and sum(map(len, ours.values())) > 10_000
    assert ours["marts.item_flow"], "nothing built"
    differ = {t: (len(ours[t]), len(theirs[t])) for t in ours if ours[t] != theirs[t]}
    assert differ == {}, f"tables that differ (written rows, connector rows): {differ}"


def test_written_pages_follow_the_landing_format(tmp_path):
    store = generate("small", 2)
    land_store(store, tmp_path)
    found = list(extracts(tmp_path))
    assert {(e.source, e.partition) for e in found} == (
        {("jira", "_site")} | {("jira", k) for k in store.jira_projects}
        | {("github", r.full_name) for r in store.github_repos})
    assert {ev for ev in TIMELINE_EVENTS} <= set(COMPACT)
    for e in found:
        assert e.manifest is not None and (e.directory / MANIFEST).exists()
        records = {}
        for page in e.pages:
            assert re.fullmatch(r"[a-z_]+-\d{6}\.jsonl", page.name), page
            lines = page.read_text().splitlines()
            records[page.name.rsplit("-", 1)[0]] = records.get(page.name.rsplit("-", 1)[0], 0) + len(lines)
            for line in lines:
                rec = json.loads(line)
                if e.source == "github" and not page.name.startswith("timeline_events"):
                    shape = COMPACT[page.name.rsplit("-", 1)[0]]
                    assert set(rec) <= set(shape), set(rec) - set(shape)
                if page.name.startswith("timeline_events"):
                    assert rec["event"]["event"] in TIMELINE_EVENTS and rec["repository"] == e.partition
        assert e.manifest["records"] == records
