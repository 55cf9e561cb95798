"""The run lock beyond `flowlens run` (issue 15): runs that Dagster launches (the daemon's, the UI's) hold the home
while each of their steps runs, and `flowlens demo` holds it like `flowlens run`: whichever comes second refuses
at once, in one line naming the holder, before touching anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets.extract import sources
from pipelines.resources import default_resources
from tests.test_cli import ROOT, flowlens, one_line_error

pytestmark = pytest.mark.timeout(180)

HOLD = ("import sys, time\nfrom pipelines.lock import acquire\nheld = acquire(sys.argv[1], shared=sys.argv[2] == 'step')\n"
        "print('held', flush=True)\ntime.sleep(600)\n")


def holder(home: Path, kind: str) -> subprocess.Popen:
    """A process holding `home` until killed: as `flowlens run` does ("run") or as a Dagster step does ("step")."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(home), kind], stdout=subprocess.PIPE, text=True,
                         env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "held"
    return p


def stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait()


def test_a_dagster_step_refuses_while_flowlens_run_holds_the_home(tmp_path):
    home = tmp_path / "home"
    p = holder(home, "run")
    try:
        result = dg.materialize([sources], instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                resources=default_resources(None, str(home)))
    finally:
        stop(p)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_START" not in kinds and "RESOURCE_INIT_FAILURE" in kinds, kinds  # refused before the step ran
    failure = next(e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE")
    text = failure.event_specific_data.error.to_string()
    assert f"another flowlens run holds {home} (process {p.pid}," in text, text


def test_flowlens_run_refuses_while_a_dagster_step_holds_the_home(tmp_path):
    home = tmp_path / "home"
    p = holder(home, "step")
    try:
        t0 = time.monotonic()
        line = one_line_error(flowlens("run", env={"FLOWLENS_HOME": str(home), "GITHUB_TOKEN": "x",
                                                   "GITHUB_API_URL": "http://127.0.0.1:9/api/v3"}, cwd=tmp_path))
        took = time.monotonic() - t0
    finally:
        stop(p)
    assert line.startswith(f"flowlens: another flowlens run holds {home} (steps of a run Dagster launched"), line
    assert took < 15, took  # at once: a Python start, no API call
    assert not (home / "dagster").exists()


def test_flowlens_demo_refuses_while_another_run_holds_its_home(tmp_path):
    home = tmp_path / "demo"
    home.mkdir()
    (home / ".flowlens-demo").write_text("demo\n")
    (home / "landing").mkdir()
    (home / "landing" / "page.json").write_text("{}")
    p = holder(home, "run")
    try:
        line = one_line_error(flowlens("demo", env={"FLOWLENS_HOME": str(home)}, cwd=tmp_path, timeout=60))
    finally:
        stop(p)
    assert line.startswith(f"flowlens: another flowlens run holds {home} (process {p.pid},"), line
    assert (home / "landing" / "page.json").exists()  # nothing of the running demo's was removed
