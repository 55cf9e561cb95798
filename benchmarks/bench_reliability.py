"""Reliability figures (issue 15's "Show"): whole runs under API faults, and runs killed with SIGKILL.

- faults: a fault-free run, then runs with a share of the API requests failing (the sandbox's transient kinds:
  429s, secondary limits, 502 bursts, 503s, connection resets), for several fault seeds; each run's marts must
  equal the fault-free run's.
- kills: `flowlens run` processes killed with SIGKILL at random moments in extract, load, models and publish; after
  each kill an uninterrupted run; its marts must equal the fault-free run's, and no temporary file survives it.

`python -m benchmarks.bench_reliability [--kills 20] [--rates 0.1,0.3] [--seeds 1,2,3] [--kill-seed 1]`; `make
test` runs a few of each (tests/reliability/test_faults_and_kills.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-01-01T00:00:00+00:00"
PHASES = ("extract", "load", "models", "publish")
# The progress line a phase starts with (pipelines/run.py), and how long after it the kill may come (seconds).
PHASE_LINE = {
    "extract": re.compile(r"^extracting "),
    "load": re.compile(r"^loading, building"),
    "models": re.compile(r"^  (staging|core): building \d+ models"),
    "publish": re.compile(r"^  checks marts: "),
}
PHASE_WINDOW = {"extract": 8.0, "load": 1.5, "models": 8.0, "publish": 1.0}


def marts(published: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(published), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'marts' order by 1").fetchall()]
        return {t: con.execute(f"select * from marts.{t} order by all").fetchall() for t in tables}
    finally:
        con.close()


def prepare(home: Path, sb: Any, store: Any) -> tuple[Path, dict[str, str]]:
    """A config for the sandbox under `home`; the environment of a run (no other credentials)."""
    from sandbox.generator import config_toml

    home.mkdir(parents=True, exist_ok=True)
    config = home.parent / f"{home.name}.toml"
    config.write_text(config_toml(store, sb.app.jira_deployment))
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_HOME"))}
    env = base | sb.env() | {"PYTHONPATH": str(ROOT), "FLOWLENS_HOME": str(home), "FLOWLENS_AS_OF": AS_OF,
                             "FLOWLENS_CONFIG": str(config)}
    return config, env


def run_in_process(home: Path, config: Path, env: dict[str, str]) -> Any:
    """One whole run in this process (the sandbox's faults apply to it); returns the RunSummary."""
    from pipelines.run import run_all

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return run_all(str(config), home, out=io.StringIO())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(env: dict[str, str], kill_at: tuple[str, float] | None = None,
            timeout: float = 1800) -> dict[str, Any]:
    """`flowlens run` as a process; with `kill_at` (phase, delay) it is SIGKILLed `delay` seconds after the
    phase's first progress line. Returns {"rc", "killed", "phase_seen", "seconds", "tail"}."""
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen, killed, tail, deadline = False, False, [], None
    while True:
        try:
            line = lines.get(timeout=0.02)
        except queue.Empty:
            line = ""
        if line is None:
            break
        if line:
            tail = (tail + [line])[-5:]
            if kill_at and not seen and PHASE_LINE[kill_at[0]].search(line):
                seen, deadline = True, time.monotonic() + kill_at[1]
        if deadline is not None and time.monotonic() >= deadline and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed, deadline = True, None
        if time.monotonic() - t0 > timeout:
            p.kill()
            raise TimeoutError(f"flowlens run took over {timeout} s")
    p.wait()
    return {"rc": p.returncode, "killed": killed and p.returncode == -signal.SIGKILL, "phase_seen": seen,
            "seconds": round(time.monotonic() - t0, 1), "tail": tail}


def fault_runs(store: Any, good: dict, rates: list[float], seeds: list[int], workdir: Path,
               check: Callable[[bool, str], None] | None = None) -> list[dict]:
    """A fresh home per (rate, seed), a whole run with faults; each run's marts against `good`."""
    from sandbox.server import Sandbox

    out = []
    for rate in rates:
        for seed in seeds:
            home = workdir / f"faults-{rate}-{seed}"
            with Sandbox(store) as sb:
                config, env = prepare(home, sb, store)
                sb.app.set_faults(rate=rate, seed=seed, retry_after_s=1)
                t0 = time.perf_counter()
                summary = run_in_process(home, config, env)
                faults = dict(sb.app.stats.faults)
                sb.app.set_faults(rate=0.0)
            same = summary.ok and marts(home / "published" / "flowlens.duckdb") == good
            row = {"rate": rate, "seed": seed, "ok": summary.ok, "marts_identical": same,
                   "faults_injected": sum(faults.values()), "faults": faults,
                   "seconds": round(time.perf_counter() - t0, 1), "errors": summary.errors[:3]}
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if check:
                check(same, json.dumps(row))
            shutil.rmtree(home, ignore_errors=True)
    return out


def kill_runs(store: Any, good: dict, kills: int, seed: int, workdir: Path,
              check: Callable[[bool, str], None] | None = None,
              phases: tuple[str, ...] = PHASES, start_from: Path | None = None) -> list[dict]:
    """`kills` SIGKILLs at random moments, cycling through the phases; after each, an uninterrupted run whose
    marts must equal `good` with no temporary file left. Extract kills start from an empty home (the first
    run's long extract), the others from the home as the previous rerun left it (at first: a copy of
    `start_from`, a home after a whole run, else an empty one)."""
    from pipelines.housekeeping import temp_files
    from sandbox.server import Sandbox

    rng = random.Random(seed)
    home = workdir / "killed"
    if start_from is not None:
        shutil.copytree(start_from, home)
    out = []
    with Sandbox(store) as sb:
        _, env = prepare(home, sb, store)
        for i in range(kills):
            phase = phases[i % len(phases)]
            delay = round(rng.uniform(0, PHASE_WINDOW[phase]), 2)
            if phase == "extract":
                shutil.rmtree(home, ignore_errors=True)
                home.mkdir()
            killed = run_cli(env, (phase, delay))
            left = [str(p.relative_to(home)) for p in temp_files(home)]
            rerun = run_cli(env)
            same = rerun["rc"] == 0 and marts(home / "published" / "flowlens.duckdb") == good
            after = [str(p.relative_to(home)) for p in temp_files(home)]
            row = {"kill": i + 1, "phase": phase, "delay_s": delay, "killed": killed["killed"],
                   "killed_after_s": killed["seconds"], "temp_files_left_by_kill": left,
                   "rerun_rc": rerun["rc"], "rerun_s": rerun["seconds"], "marts_identical": same,
                   "temp_files_after_rerun": after, "rerun_tail": [] if same else rerun["tail"]}
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if check:
                check(same and not after, json.dumps(row))
    return out


def baseline(store: Any, workdir: Path) -> dict:
    """The marts of one fault-free, uninterrupted run."""
    from sandbox.server import Sandbox

    home = workdir / "baseline"
    with Sandbox(store) as sb:
        config, env = prepare(home, sb, store)
        summary = run_in_process(home, config, env)
    assert summary.ok, summary.errors
    return marts(home / "published" / "flowlens.duckdb")


def run(scale: str = "small", kills: int = 20, rates: tuple[float, ...] = (0.1, 0.3),
        seeds: tuple[int, ...] = (1, 2, 3), kill_seed: int = 1) -> dict:
    from sandbox.generator import generate

    store = generate(scale, 1)
    with tempfile.TemporaryDirectory(prefix="flowlens-reliability-") as d:
        work = Path(d)
        t0 = time.perf_counter()
        good = baseline(store, work)
        base_s = round(time.perf_counter() - t0, 1)
        faults = fault_runs(store, good, list(rates), list(seeds), work)
        killed = kill_runs(store, good, kills, kill_seed, work) if kills else []
    return {"scale": scale, "baseline_s": base_s,
            "fault_runs": faults, "fault_runs_identical": sum(r["marts_identical"] for r in faults),
            "kills": killed, "kills_landed": sum(r["killed"] for r in killed),
            "kill_reruns_identical": sum(r["marts_identical"] for r in killed),
            "temp_files_after_reruns": sum(len(r["temp_files_after_rerun"]) for r in killed)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_reliability")
    p.add_argument("--scale", default="small", choices=("small", "medium"))
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--rates", default="0.1,0.3")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--kill-seed", type=int, default=1)
    a = p.parse_args(argv)
    figures = run(a.scale, a.kills, tuple(float(r) for r in a.rates.split(",") if r),
                  tuple(int(s) for s in a.seeds.split(",") if s), a.kill_seed)
    print(json.dumps(figures, indent=1))
    ok = (figures["fault_runs_identical"] == len(figures["fault_runs"])
          and figures["kill_reruns_identical"] == len(figures["kills"]) and not figures["temp_files_after_reruns"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
