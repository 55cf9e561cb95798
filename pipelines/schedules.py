"""The nightly run: the schedule materializes `sources`; the automation sensor carries everything downstream.

The two extract assets have different partition sets (Jira projects, GitHub repositories), which Dagster
cannot put in one job. So the schedule targets `sources` (discovery, which registers the partitions), and
every other asset carries an automation condition (AFTER_UPSTREAM): on the tick after `sources` updates, the
extracts and everything downstream are requested together and launched as one asset backfill, which runs
them in dependency order (extracts as single runs over all partitions) and stops at a failed blocking check.
"""

import os

import dagster as dg

EXTRACT_ROOT = dg.AssetSelection.assets("sources")


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
        name="nightly", cron_schedule=cron, execution_timezone=tz, target=EXTRACT_ROOT,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Nightly: discover sources; extract, load, models, publish and report follow (automation).")


automation = dg.AutomationConditionSensorDefinition(
    "flowlens_automation", target=dg.AssetSelection.all() - EXTRACT_ROOT,
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Runs the extracts after `sources`, then load, the models, publish and report.")
