"""Whole runs under API faults and SIGKILLs (`python -m benchmarks.bench_reliability` runs 20 kills, and 10%
and 30% with several fault seeds): a run with 30% of its API requests failing gives marts identical to a
fault-free run's; a run killed in models or publish (extract and load too: the benchmark) is followed by a run
whose marts equal an uninterrupted run's, with no temporary file left."""

from __future__ import annotations

import pytest

from benchmarks.bench_reliability import fault_runs, kill_runs

# whole runs: minutes each on a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture
def store(small_store):
    return small_store


@pytest.fixture
def good(baseline_run) -> dict:
    return baseline_run[1]


def expect(ok: bool, what: str) -> None:
    assert ok, what


@pytest.mark.parametrize("rate,seed", [(0.3, 2)])  # 10% and 30% with several seeds: the benchmark
def test_a_run_under_api_faults_gives_the_fault_free_marts(store, good, tmp_path, rate, seed):
    [row] = fault_runs(store, good, [rate], [seed], tmp_path, check=expect)
    assert row["faults_injected"] > 0 and row["ok"] and row["marts_identical"]


def test_a_run_killed_in_models_or_publish_is_repaired_by_the_next(store, good, baseline_run, tmp_path):
    rows = kill_runs(store, good, 2, seed=3, workdir=tmp_path, check=expect, phases=("models", "publish"),
                     start_from=baseline_run[0])
    assert [r["phase"] for r in rows] == ["models", "publish"]
    assert all(r["killed"] for r in rows), rows  # each kill came before the run finished
    assert all(r["marts_identical"] and not r["temp_files_after_rerun"] for r in rows), rows
