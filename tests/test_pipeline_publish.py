"""A BI reader querying the published file every 0.1 s during runs never errors and never sees a half-built state."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from pipelines.config import Config
from pipelines.publish import publish
from pipelines.run import run_all
from pipelines.warehouse import run_models
from sandbox.generator import generate
from sandbox.server import Sandbox
from tests.test_pipeline_run import prepare

READER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    path, out = sys.argv[1], open(sys.argv[2], "a", buffering=1)
    while True:
        if os.path.exists(path):
            try:
                con = duckdb.connect(path, read_only=True)
                try:
                    state = con.execute(
                        "select (select count(*) from information_schema.tables where table_schema = 'marts'),"
                        " (select count(*) from marts.item_flow), (select max(as_of)::varchar from meta.snapshot)"
                    ).fetchone()
                finally:
                    con.close()
                out.write(json.dumps({"state": list(state)}) + "\\n")
            except Exception as e:
                out.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\\n")
        time.sleep(0.1)
""")


def state(path: Path) -> list:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return list(con.execute(
            "select (select count(*) from information_schema.tables where table_schema = 'marts'),"
            " (select count(*) from marts.item_flow), (select max(as_of)::varchar from meta.snapshot)").fetchone())
    finally:
        con.close()


def test_reader_never_sees_a_half_built_warehouse(tmp_path, monkeypatch):
    store = generate("small", 2)
    home = tmp_path / "home"
    published = home / "published" / "flowlens.duckdb"
    log = tmp_path / "reader.jsonl"
    reader = None
    states = []
    with Sandbox(store) as sb:
        config = prepare(monkeypatch, home, sb, store, as_of=None)
        try:
            reader = subprocess.Popen([sys.executable, "-c", READER, str(published), str(log)])
            for n in range(2):
                if n:
                    sb.app.advance(fraction=0.2, days=1.0, seed=n)
                summary = run_all(str(config), home)
                assert summary.ok, summary.errors
                states.append(state(published))
            time.sleep(0.5)
        finally:
            if reader is not None:
                reader.terminate()
                reader.wait(timeout=10)
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [s["error"] for s in seen if "error" in s]
    assert not errors, errors[:3]
    observed = [s["state"] for s in seen]
    assert len(observed) >= 5
    assert all(s in states for s in observed), (states, [s for s in observed if s not in states][:3])
    assert len({s[2] for s in states}) == 2  # two different publishes were really made


def test_publish_replaces_while_a_reader_holds_the_old_file(tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    out = tmp_path / "published" / "flowlens.duckdb"
    run_models(wh, Config(), "2026-01-01T00:00:00Z")  # every model, over no data
    con = duckdb.connect(str(wh))
    con.execute("insert into marts.item_flow (item_id) values ('jira:A-1')")
    con.close()
    publish(wh, out)
    old = duckdb.connect(str(out), read_only=True)
    con = duckdb.connect(str(wh))
    con.execute("insert into marts.item_flow (item_id) values ('jira:A-2')")
    con.close()
    info = publish(wh, out)  # the old reader keeps its snapshot; the rename does not wait for it
    assert old.execute("select count(*) from marts.item_flow").fetchone()[0] == 1
    old.close()
    new = duckdb.connect(str(out), read_only=True)
    assert new.execute("select count(*) from marts.item_flow").fetchone()[0] == 2
    new.close()
    assert info["tables"] > 1
    assert [p.name for p in out.parent.iterdir()] == ["flowlens.duckdb"]  # no temp file left behind
