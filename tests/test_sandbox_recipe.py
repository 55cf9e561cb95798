"""The README's recipe (eval the sandbox's export lines, then `flowlens run`) measures what `flowlens demo` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_HOME"))}
    return base | {"PYTHONPATH": str(ROOT)} | extra


def flowlens(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def marts(published: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(published), read_only=True)
    try:
        out = {"as_of": con.execute("select as_of from meta.snapshot").fetchall()}
        for table in ("team_weekly", "item_flow", "approval_waits"):
            out[table] = con.execute(f"select * from marts.{table} order by all").fetchall()
        return out
    finally:
        con.close()


def test_recipe_and_demo_give_the_same_numbers(tmp_path):
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "sandbox", "--port", "0"], cwd=tmp_path,
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        exports: dict[str, str] = {}
        for line in server.stdout:  # the export lines, then "# sandbox: ... serving"
            if not line.startswith("export "):
                break
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
        assert {"JIRA_URL", "GITHUB_API_URL"} <= set(exports)
        flowlens("sandbox", "--write-config", "flowlens.toml", env=clean_env(), cwd=tmp_path)
        run = flowlens("run", "--config", "flowlens.toml", cwd=tmp_path,
                       env=clean_env(**exports, FLOWLENS_HOME=str(tmp_path / "recipe")))
    finally:
        server.terminate()
        server.wait(timeout=30)
    flowlens("demo", env=clean_env(FLOWLENS_HOME=str(tmp_path / "demo")), cwd=tmp_path)
    recipe, demo = (marts(tmp_path / home / "published" / "flowlens.duckdb") for home in ("recipe", "demo"))
    assert recipe["as_of"] == demo["as_of"]
    assert recipe["team_weekly"] and recipe == demo
    assert f"(as_of {exports['FLOWLENS_AS_OF']})" in run.stderr
