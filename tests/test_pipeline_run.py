"""The whole run in-process against the sandbox (small): every asset, every check; a second run is incremental."""

import io
import os
import re
from pathlib import Path

import duckdb
import pytest

from benchmarks.bench_reliability import marts
from pipelines import progress
from pipelines.run import instance_for, run_all
from pipelines.warehouse import models
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox

AS_OF = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def store():
    return generate("small", 1)


def prepare(monkeypatch, home: Path, sb: Sandbox, store, as_of: str | None = AS_OF) -> Path:
    """Point every variable of a run at `home` and the sandbox; returns the config path."""
    for name in ("DAGSTER_HOME", "JIRA_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN", "FLOWLENS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sb.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLOWLENS_HOME", str(home))
    if as_of:
        monkeypatch.setenv("FLOWLENS_AS_OF", as_of)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "flowlens.toml"
    config.write_text(config_toml(store, sb.app.jira_deployment))
    monkeypatch.setenv("FLOWLENS_CONFIG", str(config))
    return config




def test_whole_run_then_incremental(tmp_path, monkeypatch, store):
    with Sandbox(store) as sb:
        config = prepare(monkeypatch, tmp_path / "home", sb, store)
        for name in ("FLOWLENS_HOME", "FLOWLENS_CONFIG"):  # passed in, explicitly: not through the environment
            monkeypatch.delenv(name)
        out = io.StringIO()
        first = run_all(str(config), tmp_path / "home", out=out)
        assert first.ok, first.errors
        assert "FLOWLENS_HOME" not in os.environ and "FLOWLENS_CONFIG" not in os.environ
        assert_runs_configured_and_logged(tmp_path / "home", config)
        assert first.partitions.get("jira", 0) == len(store.jira_projects)
        assert first.partitions.get("github", 0) == len([r for r in store.github_repos if not r.archived])
        assert not [c for c in first.checks_failed if "warning" not in c], first.checks_failed
        assert first.checks_passed > 0
        published = tmp_path / "home" / "published" / "flowlens.duckdb"
        before = marts(published)
        assert before.get("item_flow"), "marts.item_flow is empty"
        assert (tmp_path / "home" / "report.html").read_text().count("<tr>") >= 2
        requests_first = dict(sb.app.stats.requests)
        assert_requests_as_counted(first.requests, requests_first)
        assert_progress_lines(out.getvalue(), published, first.loaded_rows)

        sb.app.reset_stats()
        second = run_all(str(config), tmp_path / "home")
        assert second.ok, second.errors
        requests_second = dict(sb.app.stats.requests)
        assert_requests_as_counted(second.requests, requests_second)
    # Nothing changed: no per-issue changelog or approval fetches, no route asked more often than on the
    # first run, and (overlap window aside) almost nothing landed again.
    assert sum(requests_second.values()) < sum(requests_first.values()), (requests_first, requests_second)
    assert all(n <= requests_first.get(route, 0) for route, n in requests_second.items()), (requests_first, requests_second)
    assert sum(second.records.values()) < sum(first.records.values()) / 10, (first.records, second.records)
    per_item = ("jira.approvals", "jira.bulkfetch", "jira.changelog")
    assert sum(requests_second.get(r, 0) for r in per_item) <= max(1, sum(requests_first.get(r, 0) for r in per_item)
                                                                   // 10), requests_second
    assert second.loaded_rows == 0
    assert marts(published) == before


def assert_progress_lines(text: str, published: Path, loaded_rows: int) -> None:
    """A line for the load, one per model as it is built (with its row count), per checked layer, and publish."""
    lines = text.splitlines()
    assert any(re.fullmatch(rf"  load: done: \d+ streams, {loaded_rows} new rows from \d+ pages in \d+\.\d s", ln)
               for ln in lines), text
    con = duckdb.connect(str(published.parent.parent / "warehouse.duckdb"), read_only=True)  # every model's table
    try:
        for m in models():
            printed = [ln for ln in lines if re.fullmatch(rf"  {re.escape(m.name)}: \d+ rows in \d+\.\d\d s", ln)]
            assert len(printed) == 1, (m.name, text)
            rows = con.execute(f"select count(*) from {m.name}").fetchone()[0]
            assert printed[0].startswith(f"  {m.name}: {rows} rows in "), (printed, rows)
    finally:
        con.close()
    assert any(ln.startswith("  checks marts: ") and " passed" in ln for ln in lines), text
    assert any(ln.startswith(f"  published {published} (") for ln in lines), text


def assert_runs_configured_and_logged(home: Path, config: Path) -> None:
    """Each job of the run got the configuration file and the home as its resources' config (shown in the UI),
    and its progress is in the run's own event log: what `flowlens run` printed, the UI shows too."""
    instance = instance_for(home)
    try:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} >= {"discover", "extract_jira", "extract_github", "refresh"}
        for r in runs:
            for name in ("jira", "github", "warehouse"):
                assert r.run_config["resources"][name]["config"] == {"config_path": str(config), "home": str(home)}
        refresh = next(r for r in runs if r.job_name == "refresh")
        events = [progress.parse(e.user_message) for e in instance.all_logs(refresh.run_id) if e.dagster_event is None]
        stages = {(e["stage"], e["event"]) for e in events if e and "stage" in e}
        assert {("load", "done"), ("model", "done"), ("checks", "done"), ("publish", "done")} <= stages, stages
    finally:
        instance.dispose()


def test_a_broken_configuration_stops_the_code_location_loading(tmp_path):
    """The nightly schedule's cron is read when Dagster loads the code location: a broken flowlens.toml fails that
    loudly, naming the file and key (before: the defaults, silently, and a night at a time nobody chose)."""
    import subprocess
    import sys

    bad = tmp_path / "flowlens.toml"
    bad.write_text('[schedule]\ncron = "every night"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWLENS_", "DAGSTER_HOME"))}
    proc = subprocess.run([sys.executable, "-c", "import pipelines.definitions"], env=env | {"FLOWLENS_CONFIG": str(bad)},
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pipelines.config.ConfigError: {bad}: schedule.cron: 'every night'"), proc.stderr[-2000:]


def assert_requests_as_counted(printed: dict[str, int], served: dict[str, int]) -> None:
    """The request totals a run prints (per source: discovery, site streams, every partition, extracted in
    parallel) equal what the sandbox itself counted (/_sandbox/stats), exactly (issue 17)."""
    assert set(printed) == {"jira", "github"}, printed
    for src in ("jira", "github"):
        assert printed[src] == sum(n for route, n in served.items() if route.startswith(f"{src}.")), (src, printed, served)
    assert sum(printed.values()) == sum(served.values()), (printed, served)
