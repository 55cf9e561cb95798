"""Optional Jira endpoints a site lacks or refuses (issue linking disabled, Service Management denied or absent,
the field listing refused): the run goes on without what they give, the manifests record the gaps,
core.source_gaps lists them and the `sources_complete` warning check names them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.http import HttpSettings
from connectors.jira import JiraSettings, connect
from landing_format import extracts
from pipelines import checks
from pipelines.warehouse import load, run_models


def sources_complete_check() -> checks.SqlCheck:
    """The `sources_complete` check, from its file in sql/checks, as the pipeline attaches it."""
    return next(c for c in checks.sql_checks() if c.name == "sources_complete")


FAST = HttpSettings(backoff_base_s=0.02, backoff_max_s=0.1, max_retries=4, connect_timeout_s=2, read_timeout_s=10)


@pytest.fixture(scope="module")
def small_store():
    from sandbox import generator

    return generator.generate("small", 1)


def _sandbox(store, deployment, **site):
    from sandbox.jira_api import JiraSite
    from sandbox.server import Sandbox

    sb = Sandbox(copy.deepcopy(store), port=0, jira_deployment=deployment)
    sb.app.jira_site = JiraSite(**site)
    return sb


def _manifests(root: Path) -> dict[str, dict]:
    return {e.partition: e.manifest for e in extracts(root) if e.manifest}


def _records(root: Path, stream: str) -> list[dict]:
    return [json.loads(line) for p in sorted(root.rglob(f"{stream}-*.jsonl")) for line in p.read_text().splitlines()]


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_issue_linking_disabled_the_sandbox_answers_404_as_jira_does(small_store, deployment):
    import requests

    with _sandbox(small_store, deployment, issue_linking=False) as sb:
        env = sb.env()
        auth = {"auth": (env["JIRA_EMAIL"], env["JIRA_API_TOKEN"])} if deployment == "cloud" else \
            {"headers": {"Authorization": f"Bearer {env['JIRA_PAT']}"}}
        r = requests.get(f"{sb.url}/rest/api/2/issueLinkType", timeout=10, **auth)
        assert r.status_code == 404
        assert r.json() == {"errorMessages": ["Issue linking is currently disabled."], "errors": {}}


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_site_without_linking_and_jsm_still_lands_everything_else(small_store, tmp_path, deployment):
    notes: list[dict] = []
    with _sandbox(small_store, deployment, issue_linking=False, jsm="denied") as sb:
        store = sb.app.store
        src = connect(JiraSettings.from_env(sb.env(), http=FAST))
        src.on_gap = notes.append
        site = src.extract_site(tmp_path)  # no exception: link types are optional
        results = src.extract_projects(tmp_path, {k: None for k in src.discover_projects()})
    v = 3 if deployment == "cloud" else 2
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert len(_records(tmp_path, "issues")) == len(store.jira_issues)
    assert _records(tmp_path, "approvals") == []
    manifests = _manifests(tmp_path)
    assert [(g["endpoint"], g["status"]) for g in manifests["_site"]["gaps"]] == \
        [(f"GET /rest/api/{v}/issueLinkType", 404)]
    assert site.gaps == manifests["_site"]["gaps"]
    desks = {p.key for p in store.jira_projects.values() if p.type == "service_desk"}
    assert desks
    for key, m in manifests.items():
        if key == "_site":
            continue
        endpoints = [(g["endpoint"], g["status"]) for g in m.get("gaps", [])]
        want = [("GET /rest/servicedeskapi/request/{key}/approval", 403)] if key in desks else []
        assert endpoints == want, key
    # told once each, in one line
    assert sorted(g["endpoint"] for g in notes) == sorted(
        [f"GET /rest/api/{v}/issueLinkType", "GET /rest/servicedeskapi/request/{key}/approval"])
    assert all("\n" not in g["what"] + g["error"] for g in notes)


def test_a_refused_field_listing_leaves_out_custom_fields_only(small_store, tmp_path):
    with _sandbox(small_store, "cloud", field_listing=False) as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=FAST))
        src.extract_site(tmp_path)
        key = next(p.key for p in sb.app.store.jira_projects.values() if p.type == "software")
        result = src.extract_project(tmp_path, key, None)
    assert result.records["issues"] == sum(1 for i in sb.app.store.jira_issues if i.project == key)
    assert [(g["endpoint"], g["status"]) for g in result.gaps] == [("GET /rest/api/3/field", 403)]
    assert not any(f.startswith("customfield_") for i in _records(tmp_path, "issues") for f in i["fields"])


def test_source_gaps_lists_them_and_sources_complete_names_them(small_store, tmp_path):
    landing, db = tmp_path / "landing", tmp_path / "w.duckdb"
    with _sandbox(small_store, "datacenter", issue_linking=False, jsm="absent") as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=FAST))
        src.extract_site(landing)
        desk = next(p.key for p in sb.app.store.jira_projects.values() if p.type == "service_desk")
        src.extract_project(landing, desk, None)
    load(db, landing)
    run_models(db, only=["core.source_gaps"])
    con = duckdb.connect(str(db))
    try:
        rows = con.execute("select source, partition, endpoint, status from core.source_gaps order by all").fetchall()
        assert rows == [("jira", desk, "GET /rest/servicedeskapi/request/{key}/approval", 404),
                        ("jira", "_site", "GET /rest/api/2/issueLinkType", 404)]
        result = checks.sql_check(con, sources_complete_check())
    finally:
        con.close()
    assert result.passed is False and result.severity.value == "WARN"
    assert result.asset_key == dg.AssetKey(["core", "source_gaps"]) and result.metadata["offending_rows"].value == 2
    listed = result.metadata["rows"].value
    assert "endpoint=GET /rest/api/2/issueLinkType, status=404" in listed, listed
    assert "endpoint=GET /rest/servicedeskapi/request/{key}/approval, status=404" in listed and desk in listed


def test_every_endpoint_answering_leaves_no_gap(small_store, tmp_path):
    landing, db = tmp_path / "landing", tmp_path / "w.duckdb"
    with _sandbox(small_store, "cloud") as sb:
        src = connect(JiraSettings.from_env(sb.env(), http=FAST))
        src.extract_site(landing)
        desk = next(p.key for p in sb.app.store.jira_projects.values() if p.type == "service_desk")
        src.extract_project(landing, desk, None)
    assert all("gaps" not in m for m in _manifests(landing).values())
    load(db, landing)
    run_models(db, only=["core.source_gaps"])
    con = duckdb.connect(str(db))
    try:
        assert con.execute("select count(*) from core.source_gaps").fetchone()[0] == 0
        assert checks.sql_check(con, sources_complete_check()).passed is True
    finally:
        con.close()


def test_check_calls_every_endpoint_and_names_the_optional_ones_it_cannot_use(small_store, tmp_path):
    from sandbox.generator import config_toml
    from tests.test_cli import flowlens

    config = tmp_path / "flowlens.toml"  # Jira alone: the GitHub section off (no GITHUB_TOKEN is passed)
    toml = config_toml(small_store, "cloud")
    assert '[sources.github]\nenabled = true\n' in toml
    config.write_text(toml.replace('[sources.github]\nenabled = true\n', '[sources.github]\nenabled = false\n'))
    with _sandbox(small_store, "cloud", issue_linking=False, jsm="denied") as sb:
        proc = flowlens("check", "--config", str(config), env={k: v for k, v in sb.env().items()
                                                                  if k.startswith("JIRA_")}, cwd=tmp_path)
        called = {r["route"] for r in sb.app.stats.log}
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    link = [ln for ln in lines if ln.startswith("Jira: GET /rest/api/3/issueLinkType: optional")]
    assert len(link) == 1 and "Issue linking is currently disabled." in link[0], proc.stdout
    jsm = [ln for ln in lines if ln.startswith("Jira: GET /rest/servicedeskapi/request/{key}/approval: optional")]
    assert len(jsm) == 1 and "403 Forbidden: You do not have permission" in jsm[0], proc.stdout
    assert "approval waits of service-desk projects are missing" in jsm[0]
    assert "Jira: 8 of 10 endpoints a run calls answered" in lines, proc.stdout
    # every endpoint a Cloud run calls was called
    assert {"jira.serverInfo", "jira.myself", "jira.field", "jira.status", "jira.issueLinkType", "jira.search_jql",
            "jira.bulkfetch", "jira.changelog", "jira.remotelink", "jira.approvals"} <= called


def test_check_fails_on_an_unknown_project_in_one_line(small_store, tmp_path):
    from tests.test_cli import flowlens

    config = tmp_path / "flowlens.toml"
    config.write_text('[sources.jira]\nprojects = ["NOPE"]\n[sources.github]\nenabled = false\n')
    with _sandbox(small_store, "datacenter") as sb:
        proc = flowlens("check", "--config", str(config), env={k: v for k, v in sb.env().items()
                                                                  if k.startswith("JIRA_")}, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    problems = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(problems) == 1, proc.stderr
    # the configuration key at fault, the request and its status, Jira's own words, what to do
    assert problems[0].startswith("flowlens: sources.jira.projects: GET /rest/api/2/search: 400: "), problems[0]
    assert "'NOPE'" in problems[0] and "Check the project keys in flowlens.toml" in problems[0]
