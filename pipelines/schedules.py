"""One run path: the jobs, the nightly schedule and the sensors that chain them; `flowlens run` runs the same jobs in
the same order (pipelines/run.py), evaluating the same sensor in-process.

1. `discover` (the schedule's job, 02:00 by default): the `sources` asset finds the Jira projects and GitHub
   repositories; it changes nothing in the instance, its materialization lists them.
2. `source_partitions`, a sensor on that materialization (Dagster's idiom for dynamic partitions): it returns
   `dynamic_partitions_requests` making the extract partitions exactly the discovered ones, and run requests for
   `sites` (the site-wide streams), `extract_jira` and `extract_github` over all their partitions (one run each,
   single-run backfill), carrying the discovery run's `flowlens/*` tags (as_of, full refresh).
3. The automation sensor carries everything downstream once the extracts are done (AFTER_UPSTREAM: no dependency
   still in progress): load, every model with its checks, publish, report, launched as one backfill in dependency
   order, never past a failed blocking check. `flowlens run` runs them as the `refresh` job.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dagster as dg

from pipelines.assets.extract import FOUND_KEY, PARTITIONS

discover_job = dg.define_asset_job("discover", selection=dg.AssetSelection.assets("sources"),
                                   description="Which Jira projects and GitHub repositories to extract.")
sites_job = dg.define_asset_job("sites", selection=dg.AssetSelection.assets("jira_site", "github_site"),
                                description="The site-wide streams: Jira statuses, fields, link types; GitHub teams.")
extract_jira_job = dg.define_asset_job("extract_jira", selection=dg.AssetSelection.assets("jira_extract"),
                                       description="Every Jira project partition, in one run.")
extract_github_job = dg.define_asset_job("extract_github", selection=dg.AssetSelection.assets("github_extract"),
                                         description="Every GitHub repository partition, in one run.")
SOURCE_JOBS = [discover_job, sites_job, extract_jira_job, extract_github_job]
DOWNSTREAM = (dg.AssetSelection.all() - dg.AssetSelection.assets("sources", "jira_site", "github_site",
                                                                  "jira_extract", "github_extract"))


def schedule_settings() -> tuple[str, str]:
    """Cron and time zone from flowlens.toml (FLOWLENS_CONFIG, ./flowlens.toml), the defaults without one. A broken
    file raises its ConfigError (one line naming the file and key): the code location fails to load and says why,
    rather than scheduling the night at a time nobody chose."""
    from pipelines.config import load_config

    s = load_config(os.environ.get("FLOWLENS_CONFIG") or None).schedule
    return s.cron, s.timezone


def build_nightly() -> dg.ScheduleDefinition:
    cron, tz = schedule_settings()
    return dg.ScheduleDefinition(
        name="nightly", cron_schedule=cron, execution_timezone=tz, job=discover_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Nightly: discover sources; the source_partitions sensor launches the extracts, the automation "
                    "sensor load, the models, publish and report.")


def found_of(event: Any) -> dict[str, list[str]]:
    """The partition keys per source a `sources` materialization (EventLogEntry) lists."""
    value = event.asset_materialization.metadata.get(FOUND_KEY)
    return json.loads(value.value) if value is not None and isinstance(value.value, str) else (
        dict(value.value) if value is not None else {})


def requests_for(instance: dg.DagsterInstance, found: dict[str, list[str]], tags: dict[str, str],
                 run_key: str) -> dg.SensorResult:
    """Partitions exactly `found` (added, and removed when no longer found), and the runs over all of them."""
    partition_requests: list[Any] = []
    runs = [dg.RunRequest(job_name="sites", run_key=f"{run_key}:sites", tags=tags)]
    for source, job in (("jira", "extract_jira"), ("github", "extract_github")):
        if source not in found:
            continue
        pdef, keys = PARTITIONS[source], list(found[source])
        have = instance.get_dynamic_partitions(pdef.name)
        new = [k for k in keys if k not in have]
        gone = [k for k in have if k not in keys]
        if new:
            partition_requests.append(pdef.build_add_request(new))
        if gone:
            partition_requests.append(pdef.build_delete_request(gone))
        after = [k for k in have if k in keys] + new  # the instance keeps them in the order they were added
        if after:
            runs.append(dg.RunRequest(job_name=job, run_key=f"{run_key}:{job}", tags=tags | {
                "dagster/asset_partition_range_start": after[0], "dagster/asset_partition_range_end": after[-1]}))
    return dg.SensorResult(dynamic_partitions_requests=partition_requests, run_requests=runs, cursor=run_key)


def latest_requests(instance: dg.DagsterInstance, cursor: str | None,
                    own_run: bool = False) -> dg.SensorResult | dg.SkipReason:
    """What the sensor returns for the latest `sources` materialization newer than `cursor`. One made by `flowlens
    run` is left to it (it runs what its discovery found itself, `own_run=True`), so a daemon sharing the instance
    does not extract again what was just extracted."""
    records = instance.fetch_materializations(dg.AssetKey("sources"), limit=1).records
    if not records:
        return dg.SkipReason("`sources` has not been materialized yet")
    record = records[0]
    if cursor and int(cursor) >= record.storage_id:
        return dg.SkipReason("no new `sources` materialization")
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    tags = {k: v for k, v in (run.tags if run else {}).items() if k.startswith("flowlens/")}
    if not own_run and tags.get("flowlens/trigger") == "flowlens run":
        return dg.SensorResult(skip_reason="`flowlens run` extracts what its discovery found", cursor=str(record.storage_id))
    return requests_for(instance, found_of(record.event_log_entry), tags, str(record.storage_id))


@dg.sensor(name="source_partitions", jobs=[sites_job, extract_jira_job, extract_github_job],
           minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After `sources`: the extract partitions become the discovered ones; the site streams and "
                       "the extracts run over all of them.")
def source_partitions(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    return latest_requests(context.instance, context.cursor)


automation = dg.AutomationConditionSensorDefinition(
    "flowlens_automation", target=DOWNSTREAM, default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Once the extracts are done: load, the models with their checks, publish and report.")
