"""The Dagster code location (`dagster dev`, the daemon, `flowlens run`): assets, checks, schedule, resources."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.extract import github_extract, github_site, jira_extract, jira_site, sources
from pipelines.assets.transform import layer_assets, load, published_warehouse_asset, report
from pipelines.resources import default_resources
from pipelines.schedules import automation, build_nightly

EXTRACT_ASSETS = [sources, jira_site, github_site, jira_extract, github_extract]


def build_definitions() -> dg.Definitions:
    layers = layer_assets()
    model_keys = [k for a in layers for k in a.keys]
    published = published_warehouse_asset(model_keys)
    warehouse_assets = [load, *layers, published, report]
    return dg.Definitions(
        assets=[*EXTRACT_ASSETS, *warehouse_assets],
        jobs=[dg.define_asset_job("discover", selection=dg.AssetSelection.assets(sources)),
              dg.define_asset_job("extract_jira", selection=dg.AssetSelection.assets(jira_extract)),
              dg.define_asset_job("extract_github", selection=dg.AssetSelection.assets(github_extract)),
              dg.define_asset_job("refresh", selection=dg.AssetSelection.assets(jira_site, github_site, *warehouse_assets),
                                  description="Site streams, load, every model, publish, report (unpartitioned).")],
        schedules=[build_nightly()],
        sensors=[automation],
        resources=default_resources(),
    )


defs = build_definitions()
