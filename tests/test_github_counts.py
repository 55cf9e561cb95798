"""The connector's request figures are exact (issue 17): per partition and in total, with partitions
extracted in parallel and searches cover many, they add up to what the sandbox itself counted."""

from __future__ import annotations

import json

import pytest

from connectors.github import GitHubSettings, connect
from connectors.http import HttpSettings

FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, connect_timeout_s=2, read_timeout_s=20)


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_request_counts_add_up_to_the_servers_per_partition_and_in_total(tmp_path, api):
    from sandbox import generator
    from sandbox.server import Sandbox

    with Sandbox(generator.generate("small", 1), port=0) as sb:
        src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, timeline_page_size=20))
        repos = src.discover_repositories()
        discovery = src.requests
        assert discovery == sum(sb.app.stats.requests.values()) > 0
        full = src.extract_repositories(tmp_path / "full", {r: None for r in repos}, parallel=4)
        served = sum(sb.app.stats.requests.values())
        assert len(full) > 4 and sum(r.requests for r in full.values()) + discovery == served == src.requests
        for repo, result in full.items():
            assert json.loads(result.manifest.read_text())["requests"] == result.requests
            if api == "rest":  # every REST request names its repository: the server counts them per repository
                assert result.requests == sb.app.stats.repositories[repo], repo
        if api == "graphql":  # an incremental run shares its searches: split, they still add up
            sb.app.advance(0.02)
            sb.app.reset_stats()
            src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, timeline_page_size=20))
            src.discover_repositories()
            discovery = src.requests
            inc = src.extract_repositories(tmp_path / "inc", {r: res.cursor for r, res in full.items()}, parallel=4)
            assert sum(r.requests for r in inc.values()) + discovery == sum(sb.app.stats.requests.values())
            assert any(json.loads(r.manifest.read_text()).get("grouped_with") for r in inc.values())
