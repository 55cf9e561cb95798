"""Teams and identities as the warehouse found them: where a run's teams came from (one line), and
`flowlens teams`, which prints them as flowlens.toml sections a user can start from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SOURCES = {"configured": "configured in flowlens.toml", "github organisation teams": "GitHub organisation teams",
           "jira team field": "the Jira Team field"}


def origin_line(con: Any) -> str:
    """One line: how many teams, from where; how many identity joins were automatic."""
    rows = con.execute("select source, count(*) from core.teams where source <> 'default' "
                       "group by source order by source").fetchall()
    auto = con.execute("select count(*) from core.identity_matches").fetchone()[0]
    joined = f"; {auto} identities joined automatically (core.identity_matches)" if auto else ""
    if not rows:
        return ("teams: none configured and none found on the sites (no GitHub organisation teams, no Jira Team "
                f"field values): every item's team is unknown{joined}")
    if any(source == "configured" for source, _ in rows):
        return f"teams: {dict(rows)['configured']} configured in flowlens.toml{joined}"
    found = " and ".join(f"{n} from {SOURCES.get(source, source)}" for source, n in rows)
    return f"teams: none configured; found {found}{joined}"


def _s(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)  # a TOML basic string


def _when(t: datetime) -> str:
    """A TOML date when the instant is a midnight UTC, else a UTC date-time."""
    t = t.astimezone(UTC)
    if (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0):
        return t.date().isoformat()
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def toml_sections(con: Any) -> str:
    """[[teams]] with their members (and valid_from/valid_to where membership changed) and [[identities]],
    each identity with a comment saying how it was joined."""
    out = ["# Teams and identities flowlens found (flowlens teams): edit, then add to flowlens.toml.", ""]
    teams = con.execute("select team, name, github_team, source from core.teams where team <> 'unknown' "
                        "order by team").fetchall()
    members = con.execute(
        "select team, person_id, case when isfinite(valid_from) then valid_from end, "
        "case when isfinite(valid_to) then valid_to end from core.memberships "
        "where person_id like 'jira:%' or person_id like 'github:%' order by team, person_id, valid_from").fetchall()
    for team, name, github_team, source in teams:
        out += [f"[[teams]]  # {SOURCES.get(source, source)}", f"key = {_s(team)}", f"name = {_s(name or team)}",
                'calendar = "default"']
        if github_team:
            out.append(f"github_team = {_s(github_team)}")
        out.append("members = [")
        for m_team, person, valid_from, valid_to in members:
            if m_team != team:
                continue
            entry = f"  {{ person = {_s(person)}"
            if valid_from is not None:
                entry += f", valid_from = {_when(valid_from)}"
            if valid_to is not None:
                entry += f", valid_to = {_when(valid_to)}"
            out.append(entry + " },")
        out += ["]", ""]
    for jira, github, source in con.execute(
            "select i.jira, i.github, coalesce(m.reason || ': ' || m.evidence, i.source) from core.identities as i "
            "left join core.identity_matches as m on m.github = i.github and m.jira = i.jira "
            "order by i.jira, i.github").fetchall():
        out += [f"[[identities]]  # {source}", f"jira = {_s(jira)}", f"github = {_s(github)}", ""]
    return "\n".join(out)
