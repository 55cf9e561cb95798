"""GitHub connector cost: requests per 1,000 pull requests for a full GraphQL sync (discovery included),
and the incremental run's share after 1% of the items changed; REST figures beside them for comparison."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from connectors.github import GitHubSettings, connect
from connectors.http import HttpSettings

HTTP = HttpSettings(backoff_base_s=0.05, backoff_max_s=1.0, secondary_min_wait_s=0.5, max_in_flight=4)


def _sync(env: dict, root: Path, api: str, cursors: dict | None = None) -> tuple[dict, int, int]:
    """Discovery, then every repository in one multi-repository extract (what `flowlens run` does):
    (results, requests the client sent, requests discovery sent)."""
    src = connect(GitHubSettings.from_env(env, api=api, http=HTTP))
    repos = src.discover_repositories()
    discovery = src.requests
    results = src.extract_repositories(root, {r: (cursors or {}).get(r) for r in repos})
    failed = [r for r in results.values() if isinstance(r, Exception)]
    if failed:
        raise failed[0]
    return results, src.requests, discovery


def _landed_equals_store(root: Path, store) -> bool:
    """Every pull request once, and every timeline event the connector asks for once, as generated."""
    import json

    from connectors.github_graphql import TIMELINE_EVENTS

    live = {r.full_name for r in store.github_repos if not r.archived}
    pulls, events = [], []
    for f in root.rglob("*.jsonl"):
        stream = f.name.rsplit("-", 1)[0]
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if stream == "pull_requests":
                pulls.append((r["base"]["repo"]["full_name"], r["number"]))
            elif stream == "timeline_events":
                events.append((r["repository"], r["issue_number"], int(r["event"]["id"])))
    want_pulls = [(p.repo, p.number) for p in store.github_pulls if p.repo in live]
    want_events = [(i.repo, i.number, e.id) for i in [*store.github_pulls, *store.github_issues] if i.repo in live
                   for e in i.events if e.event in TIMELINE_EVENTS]
    return sorted(pulls) == sorted(want_pulls) and sorted(events) == sorted(want_events)


def run(scale: str, apis: tuple[str, ...] = ("graphql", "rest")) -> dict:
    from sandbox import generator
    from sandbox.server import Sandbox

    figures: dict = {}
    for api in apis:
        if api == "rest" and scale not in ("small",):
            continue  # REST reads one timeline per item: thousands of requests, measured at small only
        store = generator.generate(scale, 1)
        with Sandbox(store, port=0) as sb, tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            full, full_requests, discovery = _sync(sb.env(), Path(tmp) / "full", api)
            full_s = time.perf_counter() - started
            served = sum(sb.app.stats.requests.values())
            partitions = sum(r.requests for r in full.values())
            pulls = sum(r.records.get("pull_requests", 0) for r in full.values())
            exact = _landed_equals_store(Path(tmp) / "full", store)
            changed = sb.app.advance(0.01)
            started = time.perf_counter()
            inc, inc_requests, _ = _sync(sb.env(), Path(tmp) / "inc", api, {k: r.cursor for k, r in full.items()})
            inc_s = time.perf_counter() - started
            figures |= {
                f"{api}_landed_exactly_once": exact,
                f"{api}_repositories": len(full),
                f"{api}_pull_requests": pulls,
                f"{api}_issues": sum(r.records.get("issues", 0) for r in full.values()),
                f"{api}_timeline_events": sum(r.records.get("timeline_events", 0) for r in full.values()),
                f"{api}_full_requests": full_requests,
                # the connector's own figures against the sandbox's count: partitions plus discovery = served
                f"{api}_full_requests_served": served,
                f"{api}_full_requests_partitions_plus_discovery": f"{partitions} + {discovery}",
                f"{api}_requests_per_1000_prs": round(full_requests * 1000 / max(pulls, 1), 1),
                f"{api}_full_s": round(full_s, 1),
                f"{api}_changed_items": changed,
                f"{api}_incremental_requests": inc_requests,
                f"{api}_incremental_prs": sum(r.records.get("pull_requests", 0) for r in inc.values()),
                f"{api}_incremental_share": round(inc_requests / max(full_requests, 1), 3),
                f"{api}_incremental_s": round(inc_s, 1),
            }
    return figures


if __name__ == "__main__":
    import sys

    for key, value in run(sys.argv[1] if len(sys.argv) > 1 else "small").items():
        print(f"{key:<36} {value}")
