"""The Dagster code location (`dagster dev`, the daemon, `flowlens run`): assets, checks, schedule, resources."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.extract import github_extract, github_site, jira_extract, jira_site, sources
from pipelines.assets.transform import layer_assets, load, published_warehouse_asset, report
from pipelines.resources import default_resources
from pipelines.schedules import SOURCE_JOBS, automation, build_nightly, source_partitions

EXTRACT_ASSETS = [sources, jira_site, github_site, jira_extract, github_extract]


def build_definitions() -> dg.Definitions:
    layers = layer_assets()
    model_keys = [k for a in layers for k in a.keys]
    published = published_warehouse_asset(model_keys)
    warehouse_assets = [load, *layers, published, report]
    return dg.Definitions(
        assets=[*EXTRACT_ASSETS, *warehouse_assets],
        jobs=[*SOURCE_JOBS,
              dg.define_asset_job("refresh", selection=dg.AssetSelection.assets(*warehouse_assets),
                                  description="Load, every model, publish, report: what the automation sensor runs "
                                              "after the extracts (pipelines/schedules.py).")],
        schedules=[build_nightly()],
        sensors=[source_partitions, automation],
        resources=default_resources(),
    )


defs = build_definitions()
