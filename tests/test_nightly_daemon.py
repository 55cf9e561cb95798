"""The real nightly path (issue 13): `dagster-daemon run` on a Dagster instance in a temporary folder, against the
sandbox. The schedule (its cron set to the next minute here) runs `discover`; the `source_partitions` sensor makes the
partitions and launches the site streams and the extracts; the automation sensor runs load, every model with its
checks, publish and report. Every step ran, every check passed, and the published marts equal `flowlens run`'s."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.bench_reliability import marts
from pipelines.run import run_all
from pipelines.warehouse import models
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-01-01T00:00:00+00:00"
BOUND_S = 780  # the daemon's whole night, on a loaded machine

pytestmark = pytest.mark.timeout(1080)

INSTANCE = """telemetry:
  enabled: false
storage:
  sqlite:
    base_dir: {home}/storage
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    granularity: op
    default_limit: 1
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def nightly_done(instance: dg.DagsterInstance) -> bool:
    """`report` materialized and nothing queued or running."""
    if not instance.fetch_materializations(dg.AssetKey("report"), limit=1).records:
        return False
    busy = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]))
    return not busy


def test_the_daemon_runs_the_night_and_publishes_what_flowlens_run_publishes(tmp_path):
    store = generate("small", 1)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE.format(home=dagster_home))
    config = tmp_path / "flowlens.toml"
    at = datetime.now(UTC) + timedelta(seconds=75)  # one night: the schedule fires once, at the next whole minute
    config.write_text(config_toml(store, "cloud") + f'\n[schedule]\ncron = "{at.minute} {at.hour} * * *"\n')
    nightly_home, run_home = tmp_path / "nightly", tmp_path / "run"
    log = tmp_path / "daemon.log"
    with Sandbox(store) as sb:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_"))}
        env = base | sb.env() | {"PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(dagster_home),
                                 "FLOWLENS_HOME": str(nightly_home), "FLOWLENS_CONFIG": str(config),
                                 "FLOWLENS_AS_OF": AS_OF}
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run",
                                   "-m", "pipelines.definitions"], cwd=ROOT, env=env, stdout=log.open("w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        try:
            instance = dg.DagsterInstance.from_config(str(dagster_home))
            while not nightly_done(instance):
                assert daemon.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() - t0 < BOUND_S, (
                    [(r.job_name, r.status.value) for r in instance.get_runs()], log.read_text()[-3000:])
                time.sleep(5)
            night_s = time.monotonic() - t0
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(env | {"FLOWLENS_HOME": str(run_home)})
            del os.environ["DAGSTER_HOME"]
            summary = run_all(str(config), run_home, out=io.StringIO())
        finally:
            os.environ.clear()
            os.environ.update(saved)
    assert summary.ok, summary.errors
    print(f"the daemon's night took {night_s:.0f} s")

    runs = instance.get_runs()
    failed = [(r.job_name, r.run_id) for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, failed
    launched = {r.job_name for r in runs}
    assert {"discover", "sites", "extract_jira", "extract_github"} <= launched, launched
    assert {r.tags.get("dagster/schedule_name") for r in runs if r.job_name == "discover"} == {"nightly"}
    by_sensor = {r.job_name for r in runs if r.tags.get("dagster/sensor_name") == "source_partitions"}
    assert by_sensor == {"sites", "extract_jira", "extract_github"}, by_sensor
    # every extract partition, the load, every model, publish and the report were materialized
    for name, partitions in (("jira_projects", [p.key for p in store.jira_projects.values()]),
                             ("github_repositories", [r.full_name for r in store.github_repos if not r.archived])):
        assert sorted(instance.get_dynamic_partitions(name)) == sorted(partitions)
    for key, pdef in (("jira_extract", "jira_projects"), ("github_extract", "github_repositories")):
        done = instance.get_materialized_partitions(dg.AssetKey(key))
        assert done == set(instance.get_dynamic_partitions(pdef)), (key, done)
    keys = [dg.AssetKey(k) for k in ("sources", "jira_site", "github_site", "load", "published_warehouse", "report")]
    keys += [dg.AssetKey(m.name.split(".")) for m in models()]
    missing = [k.to_user_string() for k in keys if not instance.fetch_materializations(k, limit=1).records]
    assert not missing, missing
    # the checks ran, and none that blocks failed
    evaluations = [rec.event_log_entry.dagster_event.event_specific_data for r in runs
                   for rec in instance.get_records_for_run(r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                          limit=10000).records]
    assert len(evaluations) >= len(models())
    assert not [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    # the same marts as `flowlens run`
    nightly = marts(nightly_home / "published" / "flowlens.duckdb")
    assert nightly.get("item_flow")
    assert nightly == marts(run_home / "published" / "flowlens.duckdb")
