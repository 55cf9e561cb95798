"""Teams without configuration (issue 17), against the sandbox: with no [[teams]] and no [[identities]], a run
takes the teams from the GitHub organisations, joins identities by email, assigns every item whose people
belong to one generated team to that team (the truth's), keeps a moved person's history with the old team, and
`flowlens teams` prints sections that `flowlens check` accepts."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.run import run_all
from sandbox import truth
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
MOVER_TO = "data"
pytestmark = pytest.mark.timeout(1800)  # the fixture makes two whole runs; a loaded machine takes minutes each


def unconfigured(store) -> str:
    """The generated flowlens.toml without its [[teams]] and [[identities]] sections."""
    blocks = config_toml(store, "cloud").split("\n\n")
    return "\n\n".join(b for b in blocks if not b.lstrip().startswith(("[[teams]]", "[[identities]]")))


def flowlens(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_HOME"))}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=base | {"PYTHONPATH": str(ROOT)} | env,
                          capture_output=True, text=True, timeout=300, check=False)


def query(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs a day apart; between them one person moves team (as the organisation's GitHub teams say)."""
    store = generate("small", 1)
    home = tmp_path_factory.mktemp("teams") / "home"
    home.mkdir()
    config = home / "flowlens.toml"
    config.write_text(unconfigured(store))
    authored = [i.author for i in [*store.github_pulls, *store.github_issues]]
    mover = max((p for p in store.people.values() if p.team == "support" and not p.bot
                 and not any(m.pid == p.pid and m.valid_from for m in store.memberships)),
                key=lambda p: (authored.count(p.login), p.login))
    saved = dict(os.environ)
    try:
        with Sandbox(store) as sb:
            for name in ("DAGSTER_HOME", "JIRA_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN", "FLOWLENS_CONFIG"):
                os.environ.pop(name, None)
            os.environ.update(sb.env())
            os.environ["FLOWLENS_AS_OF"] = first_as_of = store.now.isoformat()
            out = io.StringIO()
            first = run_all(str(config), home, out=out)
            assert first.ok, first.errors
            first_items = dict(query(home, "select item_id, team from core.work_items"))
            first_memberships = query(home, "select person_id, team, valid_from::varchar, valid_to::varchar "
                                             "from core.memberships")
            sb.app.move(mover.login, MOVER_TO)
            sb.app.advance(0.05, days=1.0)
            os.environ["FLOWLENS_AS_OF"] = second_as_of = store.now.isoformat()
            second = run_all(str(config), home, out=io.StringIO())
            assert second.ok, second.errors
            env = sb.env()
            yield {"store": store, "home": home, "config": config, "out": out.getvalue(), "env": env,
                   "mover": mover, "first_items": first_items, "first_memberships": first_memberships,
                   "first_as_of": datetime.fromisoformat(first_as_of),
                   "second_as_of": datetime.fromisoformat(second_as_of)}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_run_says_where_its_teams_came_from(runs):
    store = runs["store"]
    humans = [p for p in store.people.values() if not p.bot]
    line = next(ln.strip() for ln in runs["out"].splitlines() if ln.strip().startswith("teams:"))
    assert line == (f"teams: none configured; found {len(store.teams)} from GitHub organisation teams; "
                    f"{len(humans)} identities joined automatically (core.identity_matches)")
    teams = query(runs["home"], "select team, name, github_team, source from core.teams order by team")
    assert teams == sorted([(t.github_slug, t.name, t.github_slug, "github organisation teams")
                            for t in store.teams.values()] + [("unknown", "Unknown", None, "default")])


def test_every_person_is_joined_by_email(runs):
    store = runs["store"]
    got = set(query(runs["home"], "select jira, github, reason, evidence from core.identity_matches"))
    assert got == {(p.account_id, p.login, "same email", p.email) for p in store.people.values() if not p.bot}
    canonical = dict(query(runs["home"], "select raw_id, person_id from core.person_aliases where source = 'github'"))
    for p in store.people.values():
        if not p.bot and f"github:{p.login}" in canonical:
            assert canonical[f"github:{p.login}"] == f"jira:{p.account_id}"


def _people(store, item_id: str) -> set[str]:
    """pids of an item's reporter or author and every assignee it had."""
    if item_id.startswith("jira:"):
        issue = next(i for i in store.jira_issues if f"jira:{i.key}" == item_id)
        pids = {issue.reporter, issue.assignee} | {x for h in issue.histories for it in h.items
                                                  if it.field == "assignee" for x in (it.from_, it.to)}
        return {p for p in pids if p}
    repo, number = item_id.removeprefix("github:").split("#")
    item = next(i for i in [*store.github_pulls, *store.github_issues] if i.repo == repo and i.number == int(number))
    by_login = {p.login: p.pid for p in store.people.values()}
    return {by_login.get(login, login) for login in [item.author, *item.assignees]}


def test_items_whose_people_belong_to_one_generated_team_go_to_that_team(runs):
    """The truth assigns items by the configured projects and repositories, which this run does not have: an
    item whose reporter/author and assignees all belong, throughout, to the truth's team must get that team."""
    store = runs["store"]
    oracle = truth.compute(store, runs["first_as_of"], "cloud")
    slug = {t.key: t.github_slug for t in store.teams.values()}
    moved = {m.pid for m in store.memberships if m.valid_from or m.valid_to}  # the sites cannot know the past
    checked, wrong = 0, []
    for item_id, got in runs["first_items"].items():
        team = oracle.item_team.get(item_id)
        people = _people(store, item_id)
        if team is None or not people or people & moved or any(
                p not in store.people or store.people[p].bot or store.people[p].team != team for p in people):
            continue
        checked += 1
        if got != slug[team]:
            wrong.append((item_id, team, got))
    assert wrong == []
    assert checked > len(runs["first_items"]) / 2, (checked, len(runs["first_items"]))  # most items qualify


def test_a_person_who_moves_team_keeps_the_history_with_the_old_team(runs):
    store, home, mover = runs["store"], runs["home"], runs["mover"]
    pid = f"jira:{mover.account_id}"
    old, new = store.teams["support"].github_slug, store.teams[MOVER_TO].github_slug
    assert [(t, str(f), str(to)) for p, t, f, to in runs["first_memberships"] if p == pid] == [
        (old, "-infinity", "infinity")]
    spans = query(home, "select team, case when isfinite(valid_from) then valid_from end, case when "
                        f"isfinite(valid_to) then valid_to end from core.memberships where person_id = '{pid}' "
                        "order by valid_from")
    moved_at = runs["second_as_of"]  # the run that first saw the move: the sites say nothing of before
    assert spans == [(old, None, moved_at), (new, moved_at, None)]
    before, after = query(home, f"select core.team_of('{pid}', '{runs['first_as_of'].isoformat()}'::timestamptz, "
                                f"null), core.team_of('{pid}', '{moved_at.isoformat()}'::timestamptz, null)")[0]
    assert (before, after) == (old, new)
    # the mover's own GitHub items from before the move (authored, assigned to nobody else: their team is the
    # mover's when they were created or assigned) stay with the old team
    kept = query(home, f"select distinct team from core.work_items where source = 'github' and author_id = '{pid}' "
                       f"and coalesce(first_assignee, author_id) = author_id "
                       f"and created_at < '{moved_at.isoformat()}'::timestamptz")
    assert kept == [(old,)]


def test_flowlens_teams_prints_toml_that_check_accepts(runs, tmp_path):
    env = runs["env"] | {"FLOWLENS_HOME": str(runs["home"])}
    printed = flowlens("teams", env=env)
    assert printed.returncode == 0, printed.stderr
    sections = tomllib.loads(printed.stdout)
    store = runs["store"]
    assert {t["key"] for t in sections["teams"]} == {t.github_slug for t in store.teams.values()}
    members = {m["person"] for t in sections["teams"] for m in t["members"]}
    assert members == {f"jira:{p.account_id}" for p in store.people.values() if not p.bot}
    assert len(sections["identities"]) == len(members)
    moved = [m for t in sections["teams"] for m in t["members"] if m["person"] == f"jira:{runs['mover'].account_id}"]
    assert sorted((("valid_from" in m), ("valid_to" in m)) for m in moved) == [(False, True), (True, False)]
    config = tmp_path / "flowlens.toml"
    config.write_text(unconfigured(store) + "\n\n" + printed.stdout)
    checked = flowlens("check", "--config", str(config), env=runs["env"])
    assert checked.returncode == 0, checked.stderr
    assert f"configuration: {config}: ok" in checked.stdout
