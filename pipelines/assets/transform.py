"""The single warehouse writer: load, one asset per SQL model (built per layer), publish, report.

Every step that opens the working warehouse is in the `warehouse` pool (limit 1 in dagster.yaml):
DuckDB allows one writing process per file.
"""


import os
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipelines import checks, full_refresh, progress
from pipelines.assets.extract import AFTER_UPSTREAM, github_extract, github_site, jira_extract, jira_site
from pipelines.resources import WarehouseResource

WAREHOUSE_POOL = "warehouse"
LAYERS = ("staging", "core", "marts")  # = pipelines.sqlmodels.LAYERS, which imports duckdb (kept out of import time)



def model_key(name: str) -> dg.AssetKey:
    """"marts.handoffs" -> marts/handoffs; raw tables (and anything else) come from `load`."""
    layer, _, table = name.partition(".")
    return dg.AssetKey([layer, table]) if layer in LAYERS and table else dg.AssetKey("load")


def run_as_of(context: dg.AssetExecutionContext) -> datetime:
    """One instant for every step of a run: FLOWLENS_AS_OF, else the run's `flowlens/as_of` tag, else its creation."""
    from pipelines.warehouse import resolve_as_of

    if os.environ.get("FLOWLENS_AS_OF"):
        return resolve_as_of()
    tag = context.run.tags.get("flowlens/as_of")
    if tag:
        return resolve_as_of(tag)
    record = context.instance.get_run_record_by_id(context.run.run_id)
    created = record.create_timestamp if record else datetime.now(UTC)
    return resolve_as_of(created.astimezone(UTC))


@dg.asset(group_name="warehouse", pool=WAREHOUSE_POOL, deps=[jira_site, github_site, jira_extract, github_extract],
          kinds={"duckdb"}, automation_condition=AFTER_UPSTREAM, description="Bulk-load every landed page into raw.* in one transaction; advance cursors.")
def load(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from pipelines import warehouse as wh

    with warehouse.connection() as con:
        result = wh.load(con, warehouse.paths().landing, replace=full_refresh.sources(context),
                         progress=lambda e: progress.emit(context, {"stage": "load", "event": "stream", **e}))
    progress.emit(context, {"stage": "load", "event": "done", "rows": sum(result.rows.values()), "pages": result.pages,
                   "streams": len(result.rows), "seconds": result.seconds})
    context.log.info(f"loaded {sum(result.rows.values())} new rows from {result.pages} pages "
                     f"in {result.seconds:.1f} s")
    return dg.MaterializeResult(metadata={
        "pages": result.pages, "new_rows": sum(result.rows.values()), "extracts": len(result.extracts_loaded),
        "cursors_advanced": len(result.cursors_advanced), "seconds": round(result.seconds, 2),
        **{f"rows_{t}": n for t, n in sorted(result.rows.items())}})


def as_markdown(text: str) -> str:
    """A comment as the UI's markdown shows it: `jira:<issue key>` would otherwise be read as an HTML tag and vanish."""
    return text.replace("<", "\\<")


def model_spec(m: Any) -> dg.AssetSpec:
    """A model's asset: its upstream models (read from its SQL), the table comment as description, the hash of the
    SQL file as code version (the UI flags models changed since their last materialization), the file as code
    reference."""
    rel = f"sql/{m.layer}/{m.path.name}"
    deps = sorted({model_key(d) for d in m.depends_on} or {model_key("")}, key=lambda k: k.to_user_string())
    with warnings.catch_warnings():  # code references are beta in dagster 1.13; the UI shows them
        warnings.simplefilter("ignore", dg.BetaWarning)
        refs = dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(
            file_path=str(m.path), line_number=1, label=rel)])
    return dg.AssetSpec(model_key(m.name), deps=deps, group_name=m.layer, kinds={"duckdb", "sql"},
                        automation_condition=AFTER_UPSTREAM, code_version=m.code_version,
                        description=as_markdown(m.description) or f"{m.name}, built by {rel}",
                        metadata={"table": m.name, "sql": rel, "dagster/table_name": m.name,
                                  "dagster/code_references": refs})


def table_metadata(con: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """`dagster/column_schema` per table: each column's DuckDB type and its `COMMENT ON COLUMN` text."""
    out: dict[str, list[dg.TableColumn]] = {n: [] for n in names}
    rows = con.execute("select schema_name || '.' || table_name, column_name, data_type, comment "
                       "from duckdb_columns() where schema_name || '.' || table_name in (select unnest(?)) "
                       "order by schema_name, table_name, column_index", [names]).fetchall()
    for table, column, dtype, comment in rows:
        out[table].append(dg.TableColumn(column, dtype, description=as_markdown(comment) if comment else None))
    return {n: {"dagster/column_schema": dg.TableSchema(columns=cols)} for n, cols in out.items()}


def _layer_asset(layer: str, models: list[Any]) -> dg.AssetsDefinition:
    specs = [model_spec(m) for m in models]
    check_specs = checks.check_specs(models)
    by_key = {model_key(m.name): m for m in models}

    # can_subset: one model (or any set) runs alone, with its checks; a whole layer still runs in one step, on
    # one connection and in one transaction, which is what keeps a full rebuild as fast as one SQL script.
    @dg.multi_asset(name=f"{layer}_models", specs=specs, check_specs=check_specs, pool=WAREHOUSE_POOL,
                    can_subset=True)
    def build(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        from pipelines import warehouse as wh

        cfg = warehouse.config()
        as_of = run_as_of(context)
        chosen = [m for k, m in by_key.items() if k in context.selected_asset_keys]
        wanted = set(context.selected_asset_check_keys)
        checked = [m for m in models if any(k.asset_key == model_key(m.name) for k in wanted)]

        def built_one(e: dict) -> None:
            context.log.info(f"{e['model']}: {e['rows']} rows in {e['seconds']:.2f} s")
            progress.emit(context, {"stage": "model", "event": "done", "layer": layer, **e})

        progress.emit(context, {"stage": "model", "event": "start", "layer": layer, "models": len(chosen)})
        with warehouse.connection() as con:
            _upstream_present(con, chosen, checked)
            built = wh.run_models(con, cfg, as_of, layers=[layer], only=[m.name for m in chosen],
                                  progress=built_one) if chosen else []
            rows = {name: n for name, n, _ in built}
            made = set(rows)
            for m in checked:  # a check selected without its asset: evaluated on the table as it stands
                if m.name not in rows:
                    rows[m.name] = con.execute(f"select count(*) from {m.name}").fetchone()[0]
            t0 = time.perf_counter()
            results = [r for r in checks.evaluate(con, context.instance, checked, rows)
                       if dg.AssetCheckKey(r.asset_key, r.check_name) in wanted]
            progress.emit(context, {"stage": "checks", "event": "done", "layer": layer, "seconds": time.perf_counter() - t0,
                           "passed": sum(1 for r in results if r.passed),
                           "failed": [f"{r.asset_key.to_user_string()}:{r.check_name}"
                                      + (" (warning)" if r.severity == dg.AssetCheckSeverity.WARN else "")
                                      for r in results if not r.passed]})
            headline = _headline(con) if "marts.item_flow" in made else {}
            described = table_metadata(con, sorted(made))
            if "core.teams" in made:  # one line: where this run's teams came from
                from pipelines.teams import origin_line

                line = origin_line(con)
                context.log.info(line)
                progress.emit(context, {"stage": "teams", "event": "done", "line": line})
        for name, n, secs in built:
            md: dict[str, Any] = {"rows": n, "dagster/row_count": n, "seconds": round(secs, 3),
                                  "as_of": as_of.isoformat(), **described[name]}
            if name == "marts.item_flow":
                md |= headline
            yield dg.MaterializeResult(asset_key=model_key(name), metadata=md)
        yield from results

    return build


def _upstream_present(con: Any, chosen: list[Any], checked: list[Any]) -> None:
    """A model materialized alone reads its upstream models as the warehouse holds them: each must exist."""
    names = {m.name for m in chosen}
    held = {r[0] for r in con.execute("select schema_name || '.' || table_name from duckdb_tables() union all "
                                      "select schema_name || '.' || view_name from duckdb_views()").fetchall()}
    for m in chosen:
        for d in m.depends_on:
            if d.split(".")[0] in LAYERS and d not in names and d not in held:
                raise dg.Failure(description=f"{m.name} reads {d}, which the warehouse does not hold yet: "
                                             f"materialize {model_key(d).to_user_string()} (or everything upstream of "
                                             f"{model_key(m.name).to_user_string()}) first", allow_retries=False)
    for m in checked:
        if m.name not in names and m.name not in held:
            raise dg.Failure(description=f"checks of {m.name}: the warehouse does not hold it yet; materialize "
                                         f"{model_key(m.name).to_user_string()} first", allow_retries=False)


def _headline(con: Any) -> dict[str, Any]:
    """Headline figures as numeric metadata (plotted across runs in the UI) and a table per team."""
    from pipelines import report

    try:
        totals, rows = report.overall(con), report.team_rows(con)
    except Exception as e:  # noqa: BLE001 - the marts are checked separately; a missing column must not fail the build
        return {"headline_error": str(e).splitlines()[0]}
    md: dict[str, Any] = {k: dg.MetadataValue.float(v) for k, v in totals.items() if v is not None and k != "items"}
    return md | {"summary": dg.MetadataValue.md(markdown_table(rows))}


def layer_assets() -> list[dg.AssetsDefinition]:
    from pipelines.warehouse import LAYERS, models

    all_models = models()
    return [_layer_asset(layer, [m for m in all_models if m.layer == layer])
            for layer in LAYERS if any(m.layer == layer for m in all_models)]


def published_warehouse_asset(model_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(name="published_warehouse", group_name="publish", pool=WAREHOUSE_POOL, deps=model_keys or ["load"],
              kinds={"duckdb"}, automation_condition=AFTER_UPSTREAM, description="The BI snapshot: the finished warehouse copied and renamed into place.")
    def published_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        from pipelines.publish import PublishError, publish

        paths = warehouse.paths()
        t0 = time.perf_counter()
        try:
            info = publish(paths.warehouse, paths.published, warehouse.config())
        except PublishError as e:
            raise dg.Failure(description=str(e), allow_retries=False) from None
        progress.emit(context, {"stage": "publish", "event": "done", "path": str(paths.published), "bytes": info["bytes"],
                       "tables": info["tables"], "seconds": time.perf_counter() - t0})
        context.log.info(f"published {paths.published} ({info['bytes'] / 1e6:.1f} MB)")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.published)),
                                              "bytes": info["bytes"], "tables": info["tables"]})
    return published_warehouse


@dg.asset(group_name="publish", deps=["published_warehouse"], kinds={"html"}, automation_condition=AFTER_UPSTREAM,
          description="report.html: how work flows, as charts (offline, self-contained), from the published marts.")
def report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from pipelines.report import write_report

    paths = warehouse.paths()
    t0 = time.perf_counter()
    rows = write_report(paths.published, paths.report, warehouse.config())
    progress.emit(context, {"stage": "report", "event": "done", "path": str(paths.report), "teams": len(rows),
                   "seconds": time.perf_counter() - t0})
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.report)), "teams": len(rows),
                                          "summary": dg.MetadataValue.md(markdown_table(rows))})


def markdown_table(rows: list[dict]) -> str:
    from pipelines.report import COLUMNS, fmt

    head = "| " + " | ".join(label for _, label in COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(fmt(r.get(k)) for k, _ in COLUMNS) + " |\n" for r in rows)
