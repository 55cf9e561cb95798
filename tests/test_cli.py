"""`flowlens run`, `check` and `demo` as a user runs them: one line for a user mistake, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.warehouse import models
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def flowlens(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_HOME"))}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd,
                          env=base | {"PYTHONPATH": str(ROOT)} | (env or {}),
                          capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def sandbox():
    store = generate("small", 1)
    with Sandbox(store) as sb:
        yield sb, store


def test_run_with_bad_config_prints_one_line(tmp_path):
    bad = tmp_path / "flowlens.toml"
    bad.write_text('[sources.jira]\nprojects = "PAY"\n')
    line = one_line_error(flowlens("run", "--config", str(bad), env={"FLOWLENS_HOME": str(tmp_path)}, cwd=tmp_path))
    assert "sources.jira.projects" in line and str(bad) in line


def test_run_with_unknown_key_and_missing_file(tmp_path):
    bad = tmp_path / "flowlens.toml"
    bad.write_text("[sources.jiraa]\nenabled = true\n")
    assert "unknown key" in one_line_error(flowlens("run", "--config", str(bad), cwd=tmp_path))
    assert "file not found" in one_line_error(flowlens("run", env={"FLOWLENS_CONFIG": str(tmp_path / "no.toml")},
                                                       cwd=tmp_path))


def test_run_without_credentials_prints_one_line(tmp_path):
    line = one_line_error(flowlens("run", env={"FLOWLENS_HOME": str(tmp_path)}, cwd=tmp_path))
    assert "JIRA_URL" in line and "GITHUB_TOKEN" in line
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_check_reaches_the_sandbox(tmp_path, sandbox):
    sb, store = sandbox
    config = tmp_path / "flowlens.toml"
    config.write_text(config_toml(store, "cloud"))
    proc = flowlens("check", "--config", str(config), env=sb.env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"Jira: reachable, {len(store.jira_projects)} projects" in proc.stdout
    live = [r for r in store.github_repos if not r.archived]
    assert f"GitHub: reachable, {len(live)} repositories" in proc.stdout


def test_check_names_the_bad_token(tmp_path, sandbox):
    sb, _ = sandbox
    env = sb.env() | {"GITHUB_TOKEN": "ghp_wrong", "JIRA_API_TOKEN": "wrong"}
    proc = flowlens("check", env=env, cwd=tmp_path)
    assert proc.returncode == 2  # refused credentials are a broken configuration (tests/reliability/test_broken_config.py)
    assert "Traceback" not in proc.stderr
    problems = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(problems) == 2, proc.stderr
    assert "wrong" not in proc.stderr + proc.stdout  # credentials never echoed
    assert any(ln.startswith("flowlens: Jira:") for ln in problems)
    assert any(ln.startswith("flowlens: GitHub:") for ln in problems)


def test_demo_prints_the_headline_table(tmp_path):
    home = tmp_path / "demo"
    proc = flowlens("demo", env={"FLOWLENS_HOME": str(home)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "handoffs/item" in proc.stdout and "approval wait p85" in proc.stdout
    progress = proc.stderr.splitlines()  # the load, then a line per model as it is built, then publish
    assert any(ln.startswith("  load: done: ") for ln in progress), proc.stderr
    assert all(sum(ln.startswith(f"  {m.name}: ") and " rows in " in ln for ln in progress) == 1
               for m in models()), proc.stderr
    assert any(ln.startswith(f"  published {home / 'published' / 'flowlens.duckdb'} (") for ln in progress)
    assert str(home / "published" / "flowlens.duckdb") in proc.stdout
    assert (home / "report.html").exists() and (home / "published" / "flowlens.duckdb").exists()
    assert (home / "flowlens.toml").read_text().strip()
    # A second demo starts afresh in its own folder; a folder with someone's real warehouse is refused.
    real = tmp_path / "real"
    real.mkdir()
    (real / "warehouse.duckdb").write_bytes(b"")
    assert "not the demo's" in one_line_error(flowlens("demo", env={"FLOWLENS_HOME": str(real)}, cwd=tmp_path))
