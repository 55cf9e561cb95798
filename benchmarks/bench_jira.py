"""Jira connector cost: requests per 1,000 issues for a full sync, and the incremental share after 1% changed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from connectors.http import HttpSettings
from connectors.jira import JiraSettings, connect

HTTP = HttpSettings(backoff_base_s=0.05, backoff_max_s=1.0, max_in_flight=4)


def _sync(env: dict, root: Path, cursors: dict | None = None) -> tuple[dict, dict]:
    """Every project in one multi-project extract (what `flowlens run` and the Dagster asset do); the requests are
    the connection's, all of them (serverInfo, myself and discovery included)."""
    src = connect(JiraSettings.from_env(env, http=HTTP))
    results = src.extract_projects(root, {k: (cursors or {}).get(k) for k in src.discover_projects()})
    failed = {k: r for k, r in results.items() if isinstance(r, Exception)}
    if failed:
        raise next(iter(failed.values()))
    return results, src.client.log.requests


def _landed_equals_store(root: Path, store) -> bool:
    """Every issue once, and every history of every issue once, as the generator made them."""
    import json

    keys: list[str] = []
    histories: dict[str, list[str]] = {}
    for f in root.rglob("*.jsonl"):
        stream = f.name.rsplit("-", 1)[0]
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if stream == "issues":
                keys.append(r["key"])
            elif stream == "changelogs":
                histories.setdefault(r["issueKey"], []).extend(str(h["id"]) for h in r["changeHistories"])
    return sorted(keys) == sorted(i.key for i in store.jira_issues) and all(
        sorted(histories.get(i.key, [])) == sorted(str(h.id) for h in i.histories) for i in store.jira_issues)


def run(scale: str) -> dict:
    """`make bench`: Cloud, Data Center, and Cloud with the Approvals field hidden (the servicedeskapi fallback)."""
    return {"cloud": run_one(scale, "cloud"), "datacenter": run_one(scale, "datacenter"),
            "cloud_approvals_field_hidden": run_one(scale, "cloud", frozenset({"Approvals"}))}


def run_one(scale: str, deployment: str = "cloud", hide_fields: frozenset[str] = frozenset()) -> dict:
    """One full and one incremental sync; `hide_fields={"Approvals"}` measures the servicedeskapi fallback.
    Fails unless the connector counted exactly the requests the sandbox served."""
    from sandbox import generator
    from sandbox.server import Sandbox

    store = generator.generate(scale, 1)
    n = len(store.jira_issues)
    with Sandbox(store, port=0, jira_deployment=deployment) as sb, tempfile.TemporaryDirectory() as tmp:
        sb.app.jira_hide_fields = set(hide_fields)
        sb.app.reset_stats()
        started = time.perf_counter()
        full, by_endpoint = _sync(sb.env(), Path(tmp) / "full")
        full_s = time.perf_counter() - started
        full_requests = sum(by_endpoint.values())
        served_full = sum(sb.app.stats.requests.values())
        exact = _landed_equals_store(Path(tmp) / "full", store)
        approvals = sum(v for k, v in by_endpoint.items() if "servicedeskapi" in k)
        changed = sb.app.advance(0.01)
        sb.app.reset_stats()
        started = time.perf_counter()
        inc, inc_by_endpoint = _sync(sb.env(), Path(tmp) / "inc", {k: r.cursor for k, r in full.items()})
        inc_s = time.perf_counter() - started
        inc_requests = sum(inc_by_endpoint.values())  # the new connection's serverInfo, myself, discovery included
        served_inc = sum(sb.app.stats.requests.values())
        inc_issues = sum(r.records.get("issues", 0) for r in inc.values())
    if (full_requests, inc_requests) != (served_full, served_inc):  # the connector counts exactly what it sends
        raise AssertionError(f"{scale} {deployment}: counted {full_requests}/{inc_requests} requests, the sandbox "
                             f"served {served_full}/{served_inc}")
    return {
        "deployment": deployment,
        "hidden_fields": sorted(hide_fields),
        "issues": n,
        "histories": sum(len(i.histories) for i in store.jira_issues),
        "issues_over_100_histories": sum(len(i.histories) > 100 for i in store.jira_issues),
        "landed_exactly_once": exact,
        "full_requests": full_requests,
        "sandbox_served_full": served_full,
        "full_requests_per_1000_issues": round(full_requests * 1000 / n, 1),
        "full_requests_per_1000_issues_without_approvals": round((full_requests - approvals) * 1000 / n, 1),
        "approvals_requests": approvals,
        "full_s": round(full_s, 2),
        "changed_issues": changed,
        "incremental_issues_landed": inc_issues,
        "incremental_requests": inc_requests,
        "sandbox_served_incremental": served_inc,
        "incremental_share_of_full": round(inc_requests / full_requests, 4),
        "incremental_s": round(inc_s, 2),
        "requests_by_endpoint": dict(by_endpoint),
    }


if __name__ == "__main__":
    import json
    import sys

    for scale in sys.argv[1:] or ["small", "medium"]:
        print(scale, json.dumps(run(scale), indent=1))
