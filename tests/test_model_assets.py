"""Every SQL model is its own asset: materialised alone (with its checks), described from its SQL, and a mart
that comes out empty while its sources hold rows blocks the publish."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines import checks
from pipelines.assets.transform import as_markdown
from pipelines.definitions import build_definitions
from pipelines.resources import default_resources
from pipelines.sqlmodels import Model
from pipelines.warehouse import models

AS_OF_TAGS = {"flowlens/as_of": "2026-01-01T00:00:00+00:00"}
MARKER = "marker: not rebuilt"


@pytest.fixture
def home(tmp_path, bi, monkeypatch) -> Path:
    """A copy of the small organisation's built warehouse, as FLOWLENS_HOME."""
    for name in ("FLOWLENS_AS_OF", "FLOWLENS_CONFIG", "FLOWLENS_HOME"):
        monkeypatch.delenv(name, raising=False)
    h = tmp_path / "home"
    h.mkdir()
    shutil.copyfile(bi.warehouse, h / "warehouse.duckdb")
    shutil.copyfile(bi.warehouse.parent / "flowlens.toml", h / "flowlens.toml")
    return h


def materialize(home: Path, selection: list[str] | dg.AssetSelection, instance: dg.DagsterInstance
                ) -> dg.ExecuteInProcessResult:
    defs = build_definitions()
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    resources = default_resources(config_path=str(home / "flowlens.toml"), home=str(home))
    return dg.materialize(assets, selection=selection, resources=resources, instance=instance, tags=AS_OF_TAGS,
                          raise_on_error=False)


def test_one_mart_materializes_alone_with_its_checks(home):
    by_name = {m.name: m for m in models()}
    marts = [m.name for m in by_name.values() if m.layer == "marts"]
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        expected = con.execute("select count(*) from marts.handoffs").fetchone()[0]
        assert expected > 0
        for name in marts:  # a rebuilt table gets its comment back from its SQL
            con.execute(f"comment on table {name} is '{MARKER}'")
        con.execute("delete from marts.handoffs")
    with dg.instance_for_test() as instance:
        result = materialize(home, ["marts/handoffs"], instance)
        assert result.success
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert materialized == {"marts/handoffs"}
        evaluated = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()}
        assert evaluated == {("marts/handoffs", n) for n in
                             ("keys_unique", "durations_valid", "row_count_stable", "not_empty")}
        assert all(e.passed for e in result.get_asset_check_evaluations())
        event = instance.get_latest_materialization_event(dg.AssetKey(["marts", "handoffs"]))
        mat = event.asset_materialization
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        comments = dict(con.execute("select schema_name || '.' || table_name, comment from duckdb_tables() "
                                    "where schema_name = 'marts'").fetchall())
        assert con.execute("select count(*) from marts.handoffs").fetchone()[0] == expected
    assert comments.pop("marts.handoffs") == by_name["marts.handoffs"].description
    assert set(comments.values()) == {MARKER}, "another mart was rebuilt"

    # what the UI shows: row count, column schema with types and comments, the SQL file's hash
    assert mat.metadata["dagster/row_count"].value == expected
    schema = mat.metadata["dagster/column_schema"].value
    columns = {c.name: c for c in schema.columns}
    assert columns["handed_off_at"].type.upper().startswith("TIMESTAMP")
    comment = by_name["marts.handoffs"].column_comments["item_id"]
    assert "<issue key>" in comment and columns["item_id"].description == comment.replace("<", "\\<")
    assert mat.tags["dagster/code_version"] == by_name["marts.handoffs"].code_version


def test_definitions_describe_each_model_from_its_sql():
    graph = build_definitions().resolve_asset_graph()
    for m in models():
        node = graph.get(dg.AssetKey(m.name.split(".")))
        assert node.code_version == m.code_version and len(m.code_version) == 16
        assert node.description == (as_markdown(m.description) or f"{m.name}, built by sql/{m.layer}/{m.path.name}")
        refs = node.metadata["dagster/code_references"].code_references
        assert [Path(r.file_path) for r in refs] == [m.path] and m.path.exists()
        assert {d.to_user_string() for d in node.parent_keys} == (
            {d.replace(".", "/") if not d.startswith("raw.") else "load" for d in m.depends_on})
    handoffs = graph.get(dg.AssetKey(["marts", "handoffs"]))
    assert handoffs.description.startswith("One row per transfer")  # COMMENT ON TABLE, not "built by"


def test_not_empty_fails_only_when_the_sources_hold_rows():
    con = duckdb.connect()
    con.execute("create schema core; create schema marts; create schema raw")
    con.execute("create table core.a as select 1 as id; create table core.b (id integer); "
                "create table marts.x (id integer)")
    mart = Model(name="marts.x", layer="marts", path=Path("x.sql"), depends_on=("core.a",))
    assert checks.not_empty(con, mart, 0).passed is False  # core.a holds rows, marts.x none
    assert checks.not_empty(con, mart, 3).passed is True
    both = Model(name="marts.x", layer="marts", path=Path("x.sql"), depends_on=("core.a", "core.b"))
    assert checks.not_empty(con, both, 0).passed is True  # core.b is empty: nothing to build from
    # the item grain: empty while any payload was loaded, whatever it reads
    flow = Model(name=checks.ITEM_GRAIN, layer="marts", path=Path("item_flow.sql"), depends_on=("core.b",))
    con.execute("create table raw.jira__statuses (id varchar, payload json); create table raw.cursors (n integer)")
    con.execute("insert into raw.cursors values (1)")  # bookkeeping is not a payload
    assert checks.not_empty(con, flow, 0).passed is True
    con.execute("insert into raw.jira__statuses values ('1', '{}')")
    result = checks.not_empty(con, flow, 0)
    assert result.passed is False and result.metadata["sources_with_rows"].value == 1


def test_items_lost_on_the_way_block_the_publish(home):
    """Site data loaded, no items (as when "Materialize all" ran before any extract): marts.item_flow comes out
    empty, its blocking check fails, and the snapshot is not published."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        item_tables = ["raw.jira__issues", "raw.jira__changelogs", "raw.github__issues", "raw.github__pull_requests",
                       "raw.github__timeline_events"]
        for t in item_tables:
            con.execute(f"delete from {t}")
        assert con.execute("select count(*) from raw.jira__statuses").fetchone()[0] > 0
    selection = dg.AssetSelection.groups("staging", "core", "marts") | dg.AssetSelection.assets("published_warehouse")
    with dg.instance_for_test() as instance:
        result = materialize(home, selection, instance)
        assert not result.success
        failed = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()
                  if not e.passed}
        assert ("marts/item_flow", "not_empty") in failed
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert "marts/item_flow" in materialized and "published_warehouse" not in materialized
    assert not (home / "published" / "flowlens.duckdb").exists()


def test_a_model_alone_needs_its_upstream(tmp_path, bi):
    """On a warehouse without the core tables, marts/handoffs alone fails in one line naming what to
    materialize first, and builds nothing."""
    home = tmp_path / "fresh"
    home.mkdir()
    shutil.copyfile(bi.warehouse.parent / "flowlens.toml", home / "flowlens.toml")
    with dg.instance_for_test() as instance:
        result = materialize(home, ["marts/handoffs"], instance)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        message = failure.step_failure_data.user_failure_data.description
    missing = min(d for d in next(m for m in models() if m.name == "marts.handoffs").depends_on
                  if d.startswith("core."))
    assert message.startswith(f"marts.handoffs reads {missing}, which the warehouse does not hold yet: "
                              f"materialize {missing.replace('.', '/')}"), message
    assert "\n" not in message and not result.get_asset_materialization_events()
