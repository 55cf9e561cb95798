"""Jira issues as walks through their project's workflow, emitting changelog histories as they go."""

from __future__ import annotations

import random
import zlib
from datetime import datetime, timedelta

from sandbox.gen_org import Org
from sandbox.gen_time import step
from sandbox.model import (
    FIELD_EPIC_LINK,
    FIELD_FLAGGED,
    FIELD_SPRINT,
    JiraChangeItem,
    JiraHistory,
    JiraIssue,
    JsmApproval,
)

PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")]
PRIORITY_W = [0.05, 0.2, 0.5, 0.2, 0.05]
RESOLUTIONS = {"done": ("10000", "Done"), "wontdo": ("10001", "Won't Do"), "declined": ("10004", "Declined")}
FLAG_VALUE = "[10019]"
SUMMARY_VERBS = ["Add", "Fix", "Refactor", "Remove", "Migrate", "Document", "Speed up", "Validate", "Support"]
SUMMARY_NOUNS = ["checkout flow", "refund webhook", "login page", "CI cache", "search index", "push notifications",
                 "nightly export", "rate limiter", "invoice PDF", "feature flag", "audit log", "dark mode",
                 "currency rounding", "retry policy", "onboarding email", "data retention job"]
JSM_SUMMARIES = ["Access to production database", "New laptop", "VPN access", "Admin rights on build server",
                 "Reset MFA", "Shared mailbox", "Software licence", "Firewall rule change"]


class StopWalk(Exception):
    """The walk reached the sandbox's clock."""


def sprint_name(project: str, n: int) -> str:
    return f"{project} Sprint {n}"


def sprint_id(project_index: int, n: int, project: str = "") -> str:
    # the id the Jira emulator renders for the sprint's name
    return str(1 + zlib.crc32(sprint_name(project, n).encode()) % 5000)


def version_name(n: int) -> str:
    return f"{n // 10 + 1}.{n % 10}.0"


def version_id(project_index: int, n: int) -> str:
    # the id the Jira emulator renders for the version's name
    return str(10000 + zlib.crc32(version_name(n).encode()) % 9000)


def item(field: str, field_id: str | None, f, fs, t, ts, fieldtype: str = "jira") -> JiraChangeItem:
    return JiraChangeItem(field=field, fieldtype=fieldtype, field_id=field_id, from_=f, from_string=fs, to=t,
                          to_string=ts)


class IssueWalk:
    """State of one issue while its walk runs; `histories` gets ids later."""

    def __init__(self, org: Org, rng: random.Random, project: str, created: datetime, now: datetime,
                 epics: list[tuple[str, str, datetime]], pindex: int) -> None:
        self.org, self.rng, self.now = org, rng, now
        self.project = project
        self.pindex = pindex
        self.proj = org.projects[project]
        self.wf = org.workflows[project]
        self.team = self.proj.team
        self.t = created
        self.created = created
        self.histories: list[JiraHistory] = []
        self.status = rng.choice(self.wf["backlog"])
        self.assignee: str | None = None
        self.priority = rng.choices(PRIORITIES, PRIORITY_W)[0]
        self.flagged = False
        self.resolution: tuple[str, str] | None = None
        self.resolutiondate: datetime | None = None
        self.sprint: int | None = None
        self.fix: list[int] = []
        self.epics = epics
        self.parent: tuple[str, str, datetime] | None = None
        self.approvals: list[JsmApproval] = []
        self.force_pending = False
        self.started = False
        self.speed = 1.0

    # -- helpers
    def member(self, team: str | None = None, exclude: str | None = None) -> str:
        ms = [p for p in self.org.members_at(team or self.team, self.t) if p != exclude]
        return self.rng.choice(ms) if ms else self.org.lead(team or self.team)

    def other_team(self) -> str:
        return self.rng.choice([k for k in self.org.teams if k != self.team])

    def wait(self, actor: str | None, median_h: float, sigma: float = 1.0) -> datetime:
        clock = self.org.clock(actor or self.proj.lead)
        t = step(self.rng, clock, self.t, median_h * self.speed, sigma)
        if t > self.now:
            raise StopWalk
        self.t = t
        return t

    def emit(self, author: str | None, items: list[JiraChangeItem], t: datetime | None = None) -> None:
        self.histories.append(JiraHistory(0, author, t or self.t, items))

    def st_item(self, to: str) -> JiraChangeItem:
        s = self.org.statuses
        it = item("status", "status", self.status, s[self.status].name, to, s[to].name)
        self.status = to
        return it

    def as_item(self, to: str | None) -> JiraChangeItem:
        p = self.org.people
        it = item("assignee", "assignee", self.assignee, p[self.assignee].name if self.assignee else None,
                  to, p[to].name if to else None)
        self.assignee = to
        return it

    def move(self, role: str, actor: str | None, extra: list[JiraChangeItem] | None = None) -> None:
        to = self.rng.choice(self.wf[role])
        if to == self.status:
            to = self.wf[role][0] if self.wf[role][0] != self.status else self.wf["active"][0]
        items = [self.st_item(to)]
        if role in ("done", "wontdo"):
            res = RESOLUTIONS["declined" if self.project == "OPS" and role == "wontdo" else role]
            items.append(item("resolution", "resolution", None, None, res[0], res[1]))
            self.resolution = res
            self.resolutiondate = self.t
        elif self.resolution is not None:
            items.append(item("resolution", "resolution", self.resolution[0], self.resolution[1], None, None))
            self.resolution = None
            self.resolutiondate = None
        self.emit(actor, items + (extra or []))

    def state(self) -> str:
        return self.org.statuses[self.status].state

    # -- phases
    def start(self) -> None:
        rng = self.rng
        if rng.random() < 0.15:  # groomed: To Do <-> Backlog
            self.wait(self.proj.lead, 16)
            if len(self.wf["backlog"]) > 1:
                self.emit(self.proj.lead, [self.st_item(next(s for s in self.wf["backlog"] if s != self.status))])
        if rng.random() < 0.1:
            self.wait(self.proj.lead, 400, 1.2)  # long stay in the backlog
        self.wait(self.proj.lead, 30, 1.3)
        who = self.assignee or self.member()
        if self.assignee is None:
            r = rng.random()
            if r < 0.35:  # assignment and start in one history
                self.emit(who, [self.as_item(who)])
                self.histories[-1].items.insert(0, self.st_item(self.wf["active"][0]))
                self.started = True
                return
            if r < 0.5:  # two histories at the same instant
                self.emit(who, [self.as_item(who)])
                self.emit(who, [self.st_item(self.wf["active"][0])])
                self.started = True
                return
            self.emit(self.proj.lead, [self.as_item(who)])
            self.wait(who, 6)
        self.move("active", self.assignee)
        self.started = True

    def approval(self) -> None:
        rng = self.rng
        a = self.assignee
        reviewer = self.member(exclude=a) if rng.random() < 0.8 else self.member(self.other_team())
        extra = [self.as_item(reviewer)] if rng.random() < 0.3 else None  # hand to the reviewer
        self.move("approval", a, extra)
        self.wait(reviewer, 5, 1.3)
        r = rng.random()
        if r < 0.7:  # approved: waits in the queue (the work loop decides what comes next)
            self.move("queue", reviewer)
            if extra:
                self.emit(reviewer, [self.as_item(a)], self.t)
        elif r < 0.95:  # rejected: back to work
            self.move("active", reviewer, [self.as_item(a)] if extra else None)
        else:  # regression to the backlog
            self.move("backlog", reviewer)
            self.wait(a, 20)
            self.move("active", a)

    def decision(self) -> None:
        a = self.assignee
        self.move("decision", a)
        decider = self.org.lead(self.team) if self.rng.random() < 0.55 else self.member(self.other_team())
        self.wait(decider, 14, 1.4)
        self.move("active", decider)

    def blocked(self) -> None:
        self.move("blocked", self.assignee)
        self.wait(self.assignee, 18, 1.3)
        self.move("active", self.assignee)

    def flag(self) -> None:
        a = self.assignee
        self.emit(a, [item("Flagged", FIELD_FLAGGED, None, None, FLAG_VALUE, "Impediment", "custom")])
        self.flagged = True
        self.wait(a, 10, 1.2)
        self.emit(a, [item("Flagged", FIELD_FLAGGED, FLAG_VALUE, "Impediment", None, None, "custom")])
        self.flagged = False

    def reassign(self) -> None:
        to = self.member(exclude=self.assignee) if self.rng.random() < 0.7 else self.member(self.other_team())
        self.emit(self.assignee or self.proj.lead, [self.as_item(to)])

    def unassign_gap(self) -> None:
        a = self.assignee
        self.emit(a, [self.as_item(None)])
        self.wait(self.proj.lead, 8, 1.2)
        to = a if self.rng.random() < 0.2 else self.member(exclude=a)
        self.emit(self.proj.lead, [self.as_item(to)])

    def meta(self) -> None:
        rng = self.rng
        r = rng.random()
        actor = self.proj.lead
        if r < 0.3:
            new = rng.choices([p for p in PRIORITIES if p != self.priority])[0]
            self.emit(actor, [item("priority", "priority", self.priority[0], self.priority[1], new[0], new[1])])
            self.priority = new
        elif r < 0.6:
            self.set_sprint(actor, (self.sprint or self.sprint_now()) + 1)
        elif r < 0.85 or not self.epics:
            n = self.version_now() + rng.randint(0, 2)
            if self.fix and rng.random() < 0.5:
                old = self.fix[-1]
                self.emit(actor, [item("Fix Version", "fixVersions", version_id(self.pindex, old), version_name(old),
                                       None, None)])
                self.fix.remove(old)
            elif n not in self.fix:
                self.emit(actor, [item("Fix Version", "fixVersions", None, None, version_id(self.pindex, n),
                                       version_name(n))])
                self.fix.append(n)
        else:
            choices = [e for e in self.epics if e[2] < self.t and e != self.parent]
            if choices:
                e = rng.choice(choices)
                old = self.parent
                self.emit(actor, [item("Epic Link", FIELD_EPIC_LINK, old[1] if old else None, old[0] if old else None,
                                       e[1], e[0], "custom")])
                self.parent = e

    def sprint_now(self) -> int:
        return max(1, int((self.t - self.org.start).days // 14) + 1)

    def version_now(self) -> int:
        return max(0, int((self.t - self.org.start).days // 30))

    def set_sprint(self, actor: str | None, n: int) -> None:
        old = self.sprint
        self.emit(actor, [item("Sprint", FIELD_SPRINT, sprint_id(self.pindex, old, self.project) if old else None,
                               sprint_name(self.project, old) if old else None, sprint_id(self.pindex, n, self.project),
                               sprint_name(self.project, n), "custom")])
        self.sprint = n

    def finish(self) -> None:
        rng = self.rng
        a = self.assignee
        if rng.random() < 0.08:
            self.move("wontdo", self.org.lead(self.team))
            return
        if self.state() != "queue":
            self.move("queue", a)
        self.wait(a, 6, 1.2)
        if rng.random() < 0.3 and len(self.wf["queue"]) > 1:
            self.move("queue", a)
            self.wait(a, 4)
        self.move("done", a if rng.random() < 0.7 else self.member())

    def after_done(self) -> bool:
        """Assignee changes while done, or a reopening (True: the walk goes on)."""
        rng = self.rng
        if rng.random() < 0.07:
            self.wait(self.proj.lead, 20)
            self.emit(self.proj.lead, [self.as_item(None if rng.random() < 0.3 or self.assignee is None
                                                    else self.member(exclude=self.assignee))])
        if rng.random() < 0.08:
            self.wait(self.proj.lead, 40, 1.3)
            who = self.member()
            extra = [self.as_item(who)] if who != self.assignee and rng.random() < 0.5 else None
            self.move("active", self.proj.lead, extra)
            if self.assignee is None:
                self.emit(self.proj.lead, [self.as_item(who)])
            return True
        return False

    def phases(self) -> tuple[list, list[float]]:
        return ([self.approval, self.decision, self.blocked, self.flag, self.reassign, self.unassign_gap, self.meta],
                [3, 0.8, 0.8, 0.8, 1.2, 0.5, 1.5])

    def work(self, n_steps: int) -> None:
        rng = self.rng
        phases, weights = self.phases()
        for _ in range(n_steps):
            self.wait(self.assignee, 10, 1.1)
            if self.assignee is None:
                self.emit(self.proj.lead, [self.as_item(self.member())])
                continue
            if self.state() == "queue":
                if rng.random() < 1 - 0.75 / self.org.intensity or self.speed < 1:  # QA sends it back
                    self.move("active", self.assignee)
                else:
                    return
            rng.choices(phases, weights)[0]()

    def run(self, churn: int = 0) -> None:
        rng = self.rng
        try:
            if rng.random() < 0.15:  # planned into a sprint before work starts
                self.wait(self.proj.lead, 8)
                self.set_sprint(self.proj.lead, self.sprint_now())
            self.start()
            if churn:
                self.speed = 0.12
                while len(self.histories) < churn:
                    self.work(1)
                self.speed = 1.0
            else:
                k = self.org.intensity
                self.work(min(int(12 * k), int(rng.expovariate(0.45 / k))))
            for _ in range(3):
                self.wait(self.assignee, 8, 1.1)
                self.finish()
                if not self.after_done():
                    break
                self.work(int(rng.expovariate(0.8)))
        except StopWalk:
            pass


class JsmWalk(IssueWalk):
    """A service request: Open -> In Progress -> (Pending Approval -> approved/declined) -> Resolved."""

    def phases(self) -> tuple[list, list[float]]:
        return [self.decision, self.blocked, self.reassign, self.unassign_gap, self.flag], [0.5, 0.5, 1.5, 0.5, 0.3]

    def run(self, churn: int = 0) -> None:
        rng = self.rng
        try:
            self.wait(self.proj.lead, 3)
            agent = self.member()
            self.emit(agent, [self.as_item(agent)])
            self.move("active", agent)
            if rng.random() < 0.55 or self.force_pending:
                self.wait(agent, 2)
                self.move("approval", agent)
                approvers = sorted({self.org.lead("security"), self.member("security"),
                                    self.org.lead(rng.choice(["platform", "payments", "data"]))})[:rng.randint(1, 2)]
                ap = JsmApproval(id=str(len(self.approvals) + 1), name="Manager approval", created=self.t,
                                 completed=None, final_decision="pending",
                                 approvers=[(p, "pending") for p in approvers])
                self.approvals.append(ap)
                decider = rng.choice(approvers)
                if self.force_pending:
                    return
                self.wait(decider, 10, 1.4)
                decision = "approved" if rng.random() < 0.75 else "declined"
                ap.completed, ap.final_decision = self.t, decision
                ap.approvers = [(p, decision if p == decider else "pending") for p in approvers]
                if decision == "declined":
                    self.move("wontdo", decider)
                    return
                self.move("active", decider)
            self.work(int(rng.expovariate(0.9)))
            self.wait(self.assignee, 6)
            if rng.random() < 0.2:
                self.move("queue", self.assignee)
                self.wait(self.assignee, 12, 1.3)
            self.move("done", self.assignee)
        except StopWalk:
            pass


def summary(rng: random.Random, project: str) -> str:
    if project == "OPS":
        return rng.choice(JSM_SUMMARIES)
    return f"{rng.choice(SUMMARY_VERBS)} {rng.choice(SUMMARY_NOUNS)}"


def build_issue(org: Org, rng: random.Random, iid: int, key: str, project: str, pindex: int, created: datetime,
                now: datetime, epics: list, issuetype: str, churn: int = 0, pending: bool = False) -> JiraIssue:
    """Simulate one issue and return it with histories (ids 0: the caller numbers them)."""
    cls = JsmWalk if project == "OPS" else IssueWalk
    w = cls(org, rng, project, created, now, epics if issuetype != "Epic" else [], pindex)
    w.force_pending = pending
    reporter = w.member() if rng.random() < 0.8 or project == "OPS" else w.member(w.other_team())
    if project == "OPS":
        reporter = w.member(w.other_team())
    if issuetype != "Epic" and epics and rng.random() < 0.5:
        cands = [e for e in epics if e[2] <= created]
        if cands:
            w.parent = rng.choice(cands)
    if rng.random() < 0.15 and project != "OPS":
        w.assignee = w.member()
    if rng.random() < 0.3 and project != "OPS":
        w.sprint = w.sprint_now()
    if issuetype == "Epic":
        w.work = lambda n: IssueWalk.work(w, min(n, 1))  # epics: little churn
    w.run(churn)
    updated = max([created] + [h.created for h in w.histories])
    team = None if project == "WEB" else org.projects[project].team
    return JiraIssue(
        id=iid, key=key, project=project, issuetype=issuetype, summary=summary(rng, project), created=created,
        updated=updated, reporter=reporter, assignee=w.assignee, status=w.status, priority=w.priority[1],
        resolution=w.resolution[1] if w.resolution else None, resolutiondate=w.resolutiondate,
        labels=rng.sample(["backend", "frontend", "tech-debt", "customer", "security"], rng.randint(0, 2)),
        parent=w.parent[0] if w.parent else None, team=team, flagged=w.flagged,
        sprint=sprint_name(project, w.sprint) if w.sprint else None,
        fix_versions=[version_name(n) for n in w.fix], links=[], histories=w.histories, approvals=w.approvals)


def pick_issuetype(rng: random.Random, project: str) -> str:
    if project == "OPS":
        return "Service Request"
    return rng.choices(["Story", "Bug", "Task", "Epic"], [0.45, 0.3, 0.2, 0.05])[0]


def days(n: float) -> timedelta:
    return timedelta(days=n)
