"""SIGTERM to `flowlens run` (issue 15): the run stops promptly with one line, "stopped by SIGTERM", exit 143,
the run lock released; what was half done is repaired by the next run, as after a kill: its marts equal an
uninterrupted run's, and no temporary file is left."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bench_reliability import PHASE_LINE, PHASES, marts, prepare, run_cli
from pipelines.housekeeping import temp_files
from pipelines.lock import acquire
from sandbox.server import Sandbox

pytestmark = pytest.mark.timeout(900)


def terminated_run(env: dict[str, str], phase: str, delay: float) -> tuple[int, list[str], list[str], float]:
    """`flowlens run`, sent SIGTERM `delay` seconds after the phase's first progress line: (exit code, its
    output lines before and after the signal, seconds from the signal to its exit)."""
    p = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        if PHASE_LINE[phase].search(line):
            break
    time.sleep(delay)
    assert p.poll() is None, lines  # still running: the signal comes mid-phase
    sent = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=120)
    return p.returncode, lines, rest.splitlines(), time.monotonic() - sent


@pytest.mark.parametrize("phase,delay", [("extract", 1.0), ("models", 0.3)])
def test_sigterm_stops_the_run_and_the_next_run_repairs(small_store, baseline_run, tmp_path, phase, delay):
    start, good = baseline_run
    home = tmp_path / "home"
    if phase != "extract":  # a home after a whole run; the extract phase is long on an empty one
        shutil.copytree(start, home)
    with Sandbox(small_store) as sb:
        _, env = prepare(home, sb, small_store)
        rc, before, after, took = terminated_run(env, phase, delay)
        lines = before + after
        assert rc == 128 + signal.SIGTERM, lines[-5:]
        assert lines[-1] == "flowlens: stopped by SIGTERM", lines[-5:]
        assert not any("Traceback" in ln for ln in lines), lines
        # promptly: nothing after the signal starts (no later phase, no publish); how long it took depends on the
        # machine's load (seconds here; a benchmark's business, not a test's)
        later = PHASES[PHASES.index(phase) + 1:]
        started = [ln for ln in after for ph in later if PHASE_LINE[ph].search(ln)]
        assert not started and not [ln for ln in after if ln.startswith(("  published ", "run finished"))], \
            (after, took)
        acquire(home).release()  # the lock is free again
        rerun = run_cli(env)
    assert rerun["rc"] == 0, rerun["tail"]
    assert marts(Path(home) / "published" / "flowlens.duckdb") == good
    assert temp_files(home) == []
