"""The organisation's fixed parts: teams, people, memberships, Jira statuses and projects, repositories."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandbox.gen_time import NOW, WorkClock
from sandbox.model import Calendar, GhRepo, JiraProject, JiraStatus, Person, Team, TeamMembership

DE_HOLIDAYS = ("2024-10-03", "2024-12-24", "2024-12-25", "2024-12-26", "2024-12-31", "2025-01-01",
               "2025-04-18", "2025-04-21", "2025-05-01", "2025-05-29", "2025-06-09")

# key, name, time zone, GitHub slug, holidays, other time zones some members live in
TEAMS = [
    ("payments", "Payments", "Europe/Berlin", "payments", DE_HOLIDAYS, ("Europe/Lisbon",)),
    ("web", "Web Store", "America/Sao_Paulo", "web-store", (), ()),
    ("platform", "Platform", "America/New_York", "platform", (), ("America/Los_Angeles", "UTC")),
    ("mobile", "Mobile", "Asia/Kolkata", "mobile-apps", (), ()),
    ("data", "Data", "Europe/London", "data", (), ("Europe/Warsaw",)),
    ("support", "Customer Support", "Australia/Sydney", "support", (), ()),
    ("security", "Security", "America/Los_Angeles", "security", (), ()),
]

FIRST = ["Ana", "Bruno", "Chen", "Divya", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Lars",
         "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tomas", "Uma", "Victor", "Wen", "Ximena",
         "Yusuf", "Zoe", "Amara", "Ben", "Carla", "Dmitri", "Esther", "Felipe", "Gita", "Hugo", "Ilse", "Jamal"]
LAST = ["Souza", "Schmidt", "Li", "Iyer", "Petrova", "Haddad", "Okafor", "Tanaka", "Lopes", "Berg", "Adeyemi",
        "Nilsson", "Cohen", "Rao", "Ivanova", "Almeida", "Walsh", "Garcia", "Virtanen", "Novak", "Patel",
        "Moreau", "Zhang", "Ruiz", "Demir", "Fischer", "Mensah", "Kowalski", "Costa", "Sato", "Brown", "Kaur"]

# Jira statuses: id, name, category, true state
STATUSES = [
    ("10000", "To Do", "new", "backlog"), ("10001", "Backlog", "new", "backlog"),
    ("3", "In Progress", "indeterminate", "active"),
    ("10002", "Code Review", "indeterminate", "approval"),
    ("10003", "Ready for QA", "indeterminate", "queue"), ("10004", "Ready to Deploy", "indeterminate", "queue"),
    ("10005", "Awaiting Approval", "indeterminate", "approval"),
    ("10006", "Pending Approval", "indeterminate", "approval"),
    ("10007", "Needs Decision", "indeterminate", "decision"), ("10008", "On Hold", "indeterminate", "decision"),
    ("10009", "Blocked", "indeterminate", "blocked"),
    ("10010", "Done", "done", "done"), ("10011", "Won't Do", "done", "done"),
    ("10020", "A Fazer", "new", "backlog"), ("10021", "Em Andamento", "indeterminate", "active"),
    ("10022", "Em Revisão", "indeterminate", "approval"),
    ("10023", "Aguardando Decisão", "indeterminate", "decision"),
    ("10024", "Bloqueado", "indeterminate", "blocked"), ("10025", "Pronto para QA", "indeterminate", "queue"),
    ("10026", "Concluído", "done", "done"), ("10027", "Cancelado", "done", "done"),
    ("10030", "Open", "new", "backlog"), ("10031", "Waiting for customer", "indeterminate", "queue"),
    ("10032", "Resolved", "done", "done"), ("10033", "Declined", "done", "done"),
]

# Workflow roles -> status ids
WF_SOFTWARE = {"backlog": ["10000", "10001"], "active": ["3"], "approval": ["10002", "10005"],
               "queue": ["10003", "10004"], "decision": ["10007", "10008"], "blocked": ["10009"],
               "done": ["10010"], "wontdo": ["10011"]}
WF_PT = {"backlog": ["10020"], "active": ["10021"], "approval": ["10022"], "queue": ["10025"],
         "decision": ["10023"], "blocked": ["10024"], "done": ["10026"], "wontdo": ["10027"]}
WF_JSM = {"backlog": ["10030"], "active": ["3"], "approval": ["10006"], "queue": ["10031"],
          "decision": ["10008"], "blocked": ["10009"], "done": ["10032"], "wontdo": ["10033"]}

# key, name, type, team, workflow, service desk id
PROJECTS = [
    ("PAY", "Payments", "software", "payments", WF_SOFTWARE, None),
    ("WEB", "Loja Web", "software", "web", WF_PT, None),
    ("PLAT", "Platform", "software", "platform", WF_SOFTWARE, None),
    ("MOB", "Mobile Apps", "software", "mobile", WF_SOFTWARE, None),
    ("DATA", "Data Engineering", "software", "data", WF_SOFTWARE, None),
    ("OPS", "IT Help Desk", "service_desk", "support", WF_JSM, "2"),
]
# Jira issues, pull requests, GitHub issues
SCALES = {"small": (300, 200, 50), "medium": (12_000, 8_000, 1_500), "large": (600_000, 350_000, 50_000)}
PROJECT_WEIGHTS = {"PAY": 0.22, "WEB": 0.18, "PLAT": 0.2, "MOB": 0.15, "DATA": 0.13, "OPS": 0.12}

ORG, LABS = "acme", "acme-labs"
# org, name, team, archived, weight
REPOS = [
    (ORG, "payments-api", "payments", False, 0.14), (ORG, "payments-worker", "payments", False, 0.06),
    (ORG, "legacy-billing", "payments", True, 0.03), (ORG, "web-store", "web", False, 0.13),
    (ORG, "web-admin", "web", False, 0.06), (ORG, "infra", "platform", False, 0.1),
    (ORG, "platform-sdk", "platform", False, 0.08), (ORG, "ios-app", "mobile", False, 0.08),
    (ORG, "android-app", "mobile", False, 0.08), (ORG, "pipelines", "data", False, 0.08),
    (ORG, "support-tools", "support", False, 0.03), (ORG, "security-policies", "security", False, 0.03),
    (LABS, "prototype", "platform", False, 0.03), (LABS, "ml-lab", "data", False, 0.03),
]
ARCHIVED_AT = datetime(2025, 1, 15, 18, 0, tzinfo=UTC)
TEAM_CHANGE_AT = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # a whole date: the config states it as one
BOT_LOGIN = "depbot[bot]"

PEOPLE_PER_TEAM = {"small": 6, "medium": 18, "large": 60}
SPAN_DAYS = {"small": 180, "medium": 270, "large": 365}
INTENSITY = {"small": 1.0, "medium": 1.0, "large": 7.0}  # events per item grow with it (large: ~30 per item)


@dataclass
class Org:
    """The fixed parts, plus lookups the simulators use."""

    teams: dict[str, Team]
    people: dict[str, Person]
    memberships: list[TeamMembership]
    statuses: dict[str, JiraStatus]
    projects: dict[str, JiraProject]
    workflows: dict[str, dict[str, list[str]]]
    repos: list[GhRepo]
    repo_weights: list[float]
    team_members: dict[str, list[str]]
    bot: str  # bot pid
    start: datetime  # history starts here
    now: datetime
    intensity: float = 1.0
    clocks: dict[str, WorkClock] = field(default_factory=dict)
    by_login: dict[str, str] = field(default_factory=dict)
    _member_cache: dict = field(default_factory=dict)

    def clock(self, pid: str) -> WorkClock:
        return self.clocks[pid]

    def members_at(self, team: str, t: datetime) -> list[str]:
        """pids of the team's human members at instant t."""
        key = (team, t >= TEAM_CHANGE_AT)
        got = self._member_cache.get(key)
        if got is None:
            got = [m.pid for m in self.memberships if m.team == team
                   and (m.valid_from is None or m.valid_from <= t) and (m.valid_to is None or t < m.valid_to)]
            self._member_cache[key] = got
        return got

    def team_at(self, pid: str, t: datetime) -> str:
        for m in self.memberships:
            if m.pid == pid and (m.valid_from is None or m.valid_from <= t) and (m.valid_to is None or t < m.valid_to):
                return m.team
        return self.people[pid].team

    def lead(self, team: str) -> str:
        return self.members_at(team, self.now)[0]


def build_org(scale: str, seed: int) -> Org:
    rng = random.Random(f"org:{scale}:{seed}")
    per_team = PEOPLE_PER_TEAM[scale]
    teams: dict[str, Team] = {}
    people: dict[str, Person] = {}
    memberships: list[TeamMembership] = []
    used_logins: set[str] = set()
    n = 0
    for key, name, tz, slug, holidays, other_tzs in TEAMS:
        teams[key] = Team(key, name, Calendar(tz=tz, holidays=holidays), slug)
        size = per_team if key != "security" else max(3, per_team // 2)
        for i in range(size):
            n += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            base = f"{first}-{last}".lower()
            login = base
            k = 1
            while login in used_logins:
                k += 1
                login = f"{base}{k}"
            used_logins.add(login)
            ptz = other_tzs[i % len(other_tzs)] if other_tzs and i % 3 == 2 else tz
            pid = f"p{n:04d}"
            people[pid] = Person(
                pid=pid, name=f"{first} {last}", email=f"{login.replace('-', '.')}@acme.example",
                team=key, tz=ptz, account_id="712020:" + str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                user_key=f"JIRAUSER{10000 + n}", username=login.replace("-", "."), login=login)
            memberships.append(TeamMembership(pid, key, None, None))
    # One person moves from mobile to platform mid-history.
    mover = next(p for p in people.values() if p.team == "mobile" and p.pid != _first_of(people, "mobile"))
    for m in memberships:
        if m.pid == mover.pid:
            m.valid_to = TEAM_CHANGE_AT
    memberships.append(TeamMembership(mover.pid, "platform", TEAM_CHANGE_AT, None))
    mover.team = "platform"
    bot = Person(pid="p9999", name="depbot", email="depbot@users.noreply.example", team="platform", tz="UTC",
                 account_id="557058:" + str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                 user_key="JIRAUSER19999", username="depbot", login=BOT_LOGIN, bot=True)
    people[bot.pid] = bot

    statuses = {sid: JiraStatus(sid, name, cat, state) for sid, name, cat, state in STATUSES}
    projects: dict[str, JiraProject] = {}
    workflows: dict[str, dict[str, list[str]]] = {}
    for i, (key, name, ptype, team, wf, sd) in enumerate(PROJECTS):
        ids = [s for role in ("backlog", "active", "approval", "queue", "decision", "blocked", "done", "wontdo")
               for s in wf[role]]
        projects[key] = JiraProject(id=str(10000 + i), key=key, name=name, type=ptype, team=team,
                                    lead=_first_of(people, team), statuses=list(dict.fromkeys(ids)),
                                    service_desk_id=sd)
        workflows[key] = wf

    repos: list[GhRepo] = []
    for i, (org, name, team, archived, _w) in enumerate(REPOS):
        created = datetime(2021 + i % 3, 1 + i % 12, 3 + i, 10, 0, tzinfo=UTC)
        repos.append(GhRepo(id=600_000_000 + i * 7919, node_id=f"R_kgDOG{i:06d}", org=org, name=name, team=team,
                            archived=archived, created_at=created))
    weights = [w for *_r, w in REPOS]

    team_members: dict[str, list[str]] = {}
    for org in (ORG, LABS):
        for t in teams.values():
            team_members[f"{org}/{t.github_slug}"] = sorted(
                p.login for p in people.values() if p.team == t.key and not p.bot)

    start = NOW.replace(hour=0, minute=0) - _days(SPAN_DAYS[scale])
    org = Org(teams=teams, people=people, memberships=memberships, statuses=statuses, projects=projects,
              workflows=workflows, repos=repos, repo_weights=weights, team_members=team_members, bot=bot.pid,
              start=start, now=NOW, intensity=INTENSITY[scale])
    for p in people.values():
        cal = teams[p.team].calendar
        org.clocks[p.pid] = WorkClock(Calendar(tz=p.tz, holidays=cal.holidays if p.tz == cal.tz else ()))
        org.by_login[p.login] = p.pid
    return org


def _first_of(people: dict[str, Person], team: str) -> str:
    return next(p.pid for p in people.values() if p.team == team and not p.bot)


def _days(n: float):
    from datetime import timedelta
    return timedelta(days=n)
