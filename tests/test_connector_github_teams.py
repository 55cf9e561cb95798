"""Teams without configuration (issue 17): the connector lands the organisations' teams and members (with name
and email, for identity joins) in both API modes, against the sandbox; an organisation it cannot read is a gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.github import GitHubSettings, connect
from connectors.http import HttpSettings

FAST = HttpSettings(backoff_base_s=0.05, backoff_max_s=0.2, connect_timeout_s=2, read_timeout_s=20)
SEEN = "2025-06-30T12:00:00+00:00"


def _landed(root: Path, stream: str) -> list[dict]:
    return [json.loads(line) for f in sorted(root.glob(f"github/_site/*/{stream}-*.jsonl"))
            for line in f.read_text().splitlines()]


@pytest.fixture(scope="module")
def store():
    from sandbox import generator

    return generator.generate("small", 3)


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_teams_and_members_land_with_names_and_emails(tmp_path, store, api):
    from sandbox.server import Sandbox

    with Sandbox(store, port=0) as sb:
        src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, organizations=list(store.github_orgs)))
        result = src.extract_teams(tmp_path, SEEN)
        assert result.requests == sum(sb.app.stats.requests.values()) > 0
    teams = _landed(tmp_path, "teams")
    members = _landed(tmp_path, "team_members")
    want = {(key.split("/")[0], key.split("/")[1], login) for key, logins in store.github_team_members.items()
            for login in logins}
    assert {(m["organization"], m["team"], m["login"]) for m in members} == want
    assert {(t["organization"], t["slug"]) for t in teams} == {(o, s) for o, s, _ in want} | {
        tuple(k.split("/")) for k in store.github_team_members}
    by_login = {p.login: p for p in store.people.values()}
    for m in members:
        assert (m["name"], m["email"], m["seen_at"]) == (by_login[m["login"]].name, by_login[m["login"]].email, SEEN)
    manifest = json.loads(next(tmp_path.glob("github/_site/*/_manifest.json")).read_text())
    assert manifest["gaps"] == [] and manifest["records"]["team_members"] == len(want)


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_an_organisation_without_teams_is_a_gap_not_a_failure(tmp_path, store, api):
    from sandbox.server import Sandbox

    with Sandbox(store, port=0) as sb:
        src = connect(GitHubSettings.from_env(sb.env(), api=api, http=FAST, organizations=list(store.github_orgs)))
        src.extract_teams(tmp_path, SEEN, organisations=["no-such-org", store.github_orgs[0]])
    manifest = json.loads(next(tmp_path.glob("github/_site/*/_manifest.json")).read_text())
    assert [(g["endpoint"], g["status"]) for g in manifest["gaps"]] == [("/orgs/no-such-org/teams", 404)]
    assert {m["organization"] for m in _landed(tmp_path, "team_members")} == {store.github_orgs[0]}
