"""Housekeeping at the start of a run: temporary files a killed run left go; landing extracts already loaded
and Dagster run history older than the retention go; what is recent, or not yet loaded, stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from landing_format import Landing
from pipelines.config import Config
from pipelines.housekeeping import prune_landing, prune_runs, tidy
from pipelines.run import instance_for
from pipelines.warehouse import load

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_temporary_files_a_killed_run_left_are_removed_and_nothing_else(tmp_path):
    home = tmp_path
    (home / "published").mkdir()
    keep = [home / "published" / "flowlens.duckdb", home / "warehouse.duckdb",
            home / "landing" / "jira" / "PAY" / "20240101T000000000000Z-aaaaaaaa" / "issues-000001.jsonl"]
    litter = [home / "published" / ".flowlens.duckdb.1a2b3c4d.tmp", home / "published" / ".flowlens.duckdb.1a2b3c4d.tmp.wal",
              home / "landing" / "jira" / "PAY" / "20240101T000000000000Z-aaaaaaaa" / ".issues-000002.jsonl.9f8e7d6c.tmp",
              home / "warehouse.duckdb.tmp" / "duckdb_temp_storage-0.tmp"]
    for p in keep + litter:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    done = tidy(home, 0, 0)
    assert sorted(done.temp_files) == sorted(str(p.relative_to(home)) for p in litter[:3]) + ["warehouse.duckdb.tmp"]
    assert all(p.exists() for p in keep) and not any(p.exists() for p in litter)
    assert not (home / "warehouse.duckdb.tmp").exists()


def _extract(root: Path, when: datetime, suffix: str) -> Landing:
    landing = Landing(root, "jira", "PAY", extract_id=when.strftime("%Y%m%dT%H%M%S%fZ") + "-" + suffix)
    landing.write_page("issues", [{"id": suffix, "key": f"PAY-{suffix}", "fields": {"updated": when.isoformat()}}])
    landing.finish({"updated": when.isoformat()})
    return landing


def test_landing_extracts_older_than_the_retention_go_once_loaded(tmp_path):
    root = tmp_path / "landing"
    old = _extract(root, NOW - timedelta(days=40), "aaaaaaaa")
    recent = _extract(root, NOW - timedelta(days=5), "bbbbbbbb")
    load(tmp_path / "warehouse.duckdb", root)
    unloaded = _extract(root, NOW - timedelta(days=50), "cccccccc")  # landed, never loaded: kept
    assert prune_landing(tmp_path, 0, NOW) == 0 and old.directory.exists()  # 0 keeps everything
    assert prune_landing(tmp_path, 30, NOW) == 1
    assert not old.directory.exists() and recent.directory.exists() and unloaded.directory.exists()
    assert load(tmp_path / "warehouse.duckdb", root).rows == {"jira__issues": 1}  # the unloaded one still loads


def test_without_a_warehouse_no_landing_is_pruned(tmp_path):
    old = _extract(tmp_path / "landing", NOW - timedelta(days=400), "aaaaaaaa")
    assert prune_landing(tmp_path, 30, NOW) == 0 and old.directory.exists()


def test_run_history_older_than_the_retention_is_deleted(tmp_path):
    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def tiny() -> None:
        noop()

    instance = instance_for(tmp_path)
    for _ in range(2):
        assert tiny.execute_in_process(instance=instance).success
    assert len(instance.get_run_records()) == 2
    assert prune_runs(instance, 30) == 0  # they are minutes old
    assert prune_runs(instance, 0, datetime.now(UTC) + timedelta(days=400)) == 0  # 0 keeps everything
    assert prune_runs(instance, 30, datetime.now(UTC) + timedelta(days=31)) == 2
    assert instance.get_run_records() == []


HOLDER = """
import sys, time
import dagster as dg
from pipelines.run import instance_for
from pathlib import Path

@dg.op(pool="warehouse")
def hold() -> None:
    print("holding", flush=True)
    time.sleep(600)

@dg.job
def holder() -> None:
    hold()

holder.execute_in_process(instance=instance_for(Path(sys.argv[1])), tags={"flowlens/trigger": "flowlens run"})
"""


def test_a_killed_runs_pool_slot_is_freed_so_the_next_run_is_not_stuck(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    root = Path(__file__).resolve().parents[2]
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True,
                         env=os.environ | {"PYTHONPATH": str(root)})
    assert p.stdout is not None and p.stdout.readline().strip() == "holding"
    p.send_signal(signal.SIGKILL)
    p.wait()
    instance = instance_for(tmp_path)
    [dead] = instance.get_run_records()
    assert dead.dagster_run.status == dg.DagsterRunStatus.STARTED  # nothing else notices the process died
    assert [s.run_id for s in instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots] \
        == [dead.dagster_run.run_id]
    done = tidy(tmp_path, 0, 0, instance)
    assert done.dead_runs == [dead.dagster_run.run_id]
    assert instance.get_run_by_id(dead.dagster_run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []

    @dg.op(pool="warehouse")
    def write() -> None:
        pass

    @dg.job
    def next_run() -> None:
        write()

    assert next_run.execute_in_process(instance=instance).success  # waited forever before
    assert tidy(tmp_path, 0, 0, instance).dead_runs == []  # finished runs are left alone


def test_the_retention_defaults_are_documented():
    keep = Config().housekeeping
    example = (Path(__file__).resolve().parents[2] / "flowlens.example.toml").read_text()
    assert f"landing_days = {keep.landing_days}\n" in example
    assert f"run_history_days = {keep.run_history_days}\n" in example
