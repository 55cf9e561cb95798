"""One run at a time per FLOWLENS_HOME: the second refuses at once, in one line naming the holder; a lock left
by a dead process is taken over; two runs started together on a fresh or an existing home: one runs, one refuses,
and the run after them works."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.lock import LOCK_FILE, HomeLocked, acquire
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox
from tests.test_cli import ROOT, one_line_error

HOLD = ("import sys, time\nfrom pipelines.lock import acquire\nheld = acquire(sys.argv[1])\n"
        "print('held', flush=True)\ntime.sleep(600)\n")


def holder(home: Path) -> subprocess.Popen:
    """A process holding the lock on `home` until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True,
                         env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "held"
    return p


def flowlens_popen(home: Path, config: Path, env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_HOME"))}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--config", str(config)],
                            env=base | env | {"PYTHONPATH": str(ROOT), "FLOWLENS_HOME": str(home),
                                              "FLOWLENS_AS_OF": "2026-01-01T00:00:00+00:00"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_held_home_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    home = tmp_path / "home"
    p = holder(home)
    try:
        with pytest.raises(HomeLocked) as e:
            acquire(home)
        assert f"process {p.pid}," in str(e.value) and "started 20" in str(e.value) and str(home) in str(e.value)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    lock = acquire(home)  # the dead process's lock is free again; its record says who it was
    assert lock.took_over and lock.took_over["pid"] == p.pid
    assert acquire(home) is lock  # this process may take it again (the CLI, then run_all)
    lock.release()
    assert refused_elsewhere(home)  # still held: one release per acquire
    lock.release()
    assert not refused_elsewhere(home)
    again = acquire(home)
    assert again.took_over is None  # released cleanly: nothing to take over
    again.release()


def refused_elsewhere(home: Path) -> bool:
    """Whether another process is refused the lock on `home` now."""
    code = "import sys\nfrom pipelines.lock import HomeLocked, acquire\ntry:\n    acquire(sys.argv[1])\n" \
           "except HomeLocked:\n    sys.exit(3)\n"
    return subprocess.run([sys.executable, "-c", code, str(home)], env=os.environ | {"PYTHONPATH": str(ROOT)},
                          timeout=300, check=False).returncode == 3


def test_a_home_that_cannot_hold_the_lock_is_one_line(tmp_path):
    from pipelines.config import ConfigError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^FLOWLENS_HOME .*file: cannot make or write run.lock there"):
        acquire(tmp_path / "file")


def test_a_second_run_refuses_before_any_api_call_or_dagster_storage(tmp_path):
    store = generate("small", 1)
    home = tmp_path / "home"
    p = holder(home)
    try:
        with Sandbox(store) as sb:
            config = tmp_path / "flowlens.toml"
            config.write_text(config_toml(store, sb.app.jira_deployment))
            sb.app.reset_stats()
            run = flowlens_popen(home, config, sb.env() | {"PYTHONPROFILEIMPORTTIME": "1"})
            out, err = run.communicate(timeout=600)
            served = sum(sb.app.stats.requests.values())
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in err.splitlines() if ln.startswith("import time:")]
    assert "pipelines.lock" in imported and not [m for m in imported if m.split(".")[0] == "dagster"], \
        "the refusal must come before Dagster (about a second of imports) is loaded"
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("import time:"))
    line = one_line_error(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    assert line.startswith(f"flowlens: another flowlens run holds {home} (process {p.pid}, started "), line
    assert served == 0
    assert sorted(x.name for x in home.iterdir()) == [LOCK_FILE]  # no Dagster storage, no warehouse touched


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("attempt", ["fresh", "existing"])
def test_two_runs_at_once_on_a_fresh_and_on_an_existing_home(tmp_path, small_store, baseline_run, attempt):
    store = small_store
    home = tmp_path / "home"
    if attempt == "existing":
        shutil.copytree(baseline_run[0], home)
    with Sandbox(store) as sb:
        config = tmp_path / "flowlens.toml"
        config.write_text(config_toml(store, sb.app.jira_deployment))
        for later in (False, True) if attempt == "fresh" else (False,):  # then one on its own: it works
            runs = [flowlens_popen(home, config, sb.env()) for _ in range(1 if later else 2)]
            done = [(r, *r.communicate(timeout=3000)) for r in runs]
            ok = [d for d in done if d[0].returncode == 0]
            refused = [d for d in done if d[0].returncode != 0]
            assert len(ok) == 1 and len(refused) == len(runs) - 1, [(d[0].returncode, d[2][-2000:]) for d in done]
            assert "run finished" in ok[0][2]
            if refused:
                line = one_line_error(subprocess.CompletedProcess(refused[0][0].args, 1, refused[0][1],
                                                                  refused[0][2]))
                assert f"(process {ok[0][0].pid}," in line, line
        assert (home / LOCK_FILE).read_text() == ""  # released
