"""A flowlens.toml describing a generated organisation (teams, identities, calendars, mappings)."""

from __future__ import annotations

import json

from sandbox.model import Person, Store

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DECISION_LABELS = ("needs-decision", "needs-discussion")
# GitHub names are case-insensitive and people write them as they like: the configuration spells these
# repositories its own way (GitHub's full_name is all lower case), and names one by its former name.
MIXED_CASE = {"acme/payments-worker": "Acme/Payments-Worker", "acme/web-store": "ACME/Web-Store",
              "acme-labs/prototype": "Acme-Labs/Prototype"}


def _s(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)  # a TOML basic string


def _list(vs) -> str:
    return "[" + ", ".join(_s(v) for v in vs) + "]"


def jira_id(p: Person, jira_deployment: str) -> str:
    if jira_deployment not in ("cloud", "datacenter"):
        raise ValueError(f"unknown Jira deployment {jira_deployment!r}; use 'cloud' or 'datacenter'")
    return p.account_id if jira_deployment == "cloud" else p.user_key


def config_toml(store: Store, jira_deployment: str = "cloud") -> str:
    """The configuration a user of this organisation would write."""
    out = [("# flowlens.toml for the sandbox organisation "
           f"(scale {store.scale}, seed {store.seed}, Jira {jira_deployment})"), ""]
    out += ["[sources.jira]", "enabled = true", f"projects = {_list(sorted(store.jira_projects))}",
            "overlap_minutes = 10", ""]
    live = {r.full_name for r in store.github_repos if not r.archived}
    spelled = [MIXED_CASE[n] for n in sorted(MIXED_CASE) if n in live]
    spelled += sorted(old for old, new in store.github_former_names.items() if new in live)[:1]
    out += ["[sources.github]", "enabled = true", 'api = "graphql"',
            f"organizations = {_list(store.github_orgs)}", f"repositories = {_list(spelled)}",
            "overlap_minutes = 10", ""]
    out += ["[status_mapping]", "use_default_patterns = true", ""]
    # Non-English workflows: every status name mapped explicitly. English ones: the wait states are left to
    # the default name patterns, the rest (To Do, In Progress, Done...) pinned as a careful admin would.
    for proj in store.jira_projects.values():
        names = [store.jira_statuses[s] for s in proj.statuses]
        if not any(not s.name.isascii() for s in names) and proj.key != "WEB":
            names = [s for s in names if s.state in ("backlog", "active", "done")]
        out.append(f"[status_mapping.projects.{proj.key}]")
        out += [f"{_s(s.name)} = {_s(s.state)}" for s in names]
        out.append("")
    out += ["[status_mapping.github_labels]", 'blocked = "blocked"']
    out += [f"{_s(lab)} = \"decision\"" for lab in DECISION_LABELS] + [""]

    for team in store.teams.values():
        projects = sorted(p.key for p in store.jira_projects.values() if p.team == team.key)
        repos = sorted(MIXED_CASE.get(r.full_name, r.full_name) for r in store.github_repos if r.team == team.key)
        out += ["[[teams]]", f"key = {_s(team.key)}", f"name = {_s(team.name)}", f"calendar = {_s(team.key)}",
                f"github_team = {_s(team.github_slug)}", f"jira_projects = {_list(projects)}",
                f"github_repositories = {_list(repos)}", "members = ["]
        for m in store.memberships:
            if m.team != team.key:
                continue
            entry = f'  {{ person = {_s("jira:" + jira_id(store.people[m.pid], jira_deployment))}'
            if m.valid_from:
                entry += f", valid_from = {m.valid_from.date().isoformat()}"
            if m.valid_to:
                entry += f", valid_to = {m.valid_to.date().isoformat()}"
            out.append(entry + " },")
        out += ["]", ""]

    for p in store.people.values():
        if p.bot:
            continue
        out += ["[[identities]]", f"jira = {_s(jira_id(p, jira_deployment))}", f"github = {_s(p.login)}", ""]

    out += ["[calendars.default]", 'timezone = "UTC"', f"workdays = {_list(DAYS[:5])}",
            'hours = ["09:00", "17:00"]', "holidays = []", ""]
    for team in store.teams.values():
        c = team.calendar
        out += [f"[calendars.{team.key}]", f"timezone = {_s(c.tz)}",
                f"workdays = {_list(DAYS[d] for d in c.workdays)}",
                f'hours = ["{c.start_hour:02d}:00", "{c.end_hour:02d}:00"]',
                f"holidays = [{', '.join(c.holidays)}]", ""]

    bots = sorted(p.login for p in store.people.values() if p.bot)
    out += ["[bots]", f"names = {_list(bots)}", "", "[decisions]", f"github_labels = {_list(DECISION_LABELS)}", "",
            "[privacy]", "min_group_size = 3", ""]
    return "\n".join(out)
