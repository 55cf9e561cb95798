"""The whole run in-process against the sandbox (small): every asset, every check; a second run is incremental."""

import io
import re
from pathlib import Path

import duckdb
import pytest

from benchmarks.bench_reliability import marts
from pipelines.run import run_all
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
        out = io.StringIO()
        first = run_all(str(config), tmp_path / "home", out=out)
        assert first.ok, first.errors
        assert first.partitions.get("jira", 0) == len(store.jira_projects)
        assert first.partitions.get("github", 0) == len([r for r in store.github_repos if not r.archived])
        assert not [c for c in first.checks_failed if "warning" not in c], first.checks_failed
        assert first.checks_passed > 0
        published = tmp_path / "home" / "published" / "flowlens.duckdb"
        before = marts(published)
        assert before.get("item_flow"), "marts.item_flow is empty"
        assert (tmp_path / "home" / "report.html").read_text().count("<tr>") >= 2
        requests_first = dict(sb.app.stats.requests)
        assert_progress_lines(out.getvalue(), published, first.loaded_rows)

        sb.app.reset_stats()
        second = run_all(str(config), tmp_path / "home")
        assert second.ok, second.errors
        requests_second = dict(sb.app.stats.requests)
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
