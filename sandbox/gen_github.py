"""GitHub pull requests and issues as walks emitting timeline events."""

from __future__ import annotations

import bisect
import hashlib
import random
from datetime import datetime, timedelta

from sandbox.gen_jira import StopWalk
from sandbox.gen_org import Org
from sandbox.gen_time import step
from sandbox.model import GhEvent, GhIssue, GhPull, GhRepo

APPROVE_BODIES = ["LGTM", "Looks good, thanks!", "Ship it", "Nice cleanup.", ""]
CHANGES_BODIES = ["Please add a test for the error path.", "This breaks the retry semantics, see comment.",
                  "Can we avoid the extra query here?", "Needs a migration note."]
COMMENT_BODIES = ["Question about the naming here.", "Not blocking: consider extracting a helper.",
                  "Should this be behind a flag?"]
PR_TITLES = ["Add {}", "Fix {}", "Refactor {}", "Speed up {}", "Remove dead code in {}", "Handle errors in {}"]
TOPICS = ["checkout", "webhooks", "auth", "ci cache", "exports", "rate limiter", "config loader", "retries",
          "metrics", "pagination", "search", "logging"]
NOISE = frozenset({"commented", "committed"})  # timeline items flowlens does not read
TRIAGE_LABELS = ["needs-tests", "performance", "breaking-change", "documentation"]
DEPS = ["requests", "lodash", "react", "boto3", "jackson-databind", "urllib3", "axios", "pydantic"]


def sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


class PullWalk:
    """One pull request's life; events get ids later (id 0 until numbered)."""

    def __init__(self, org: Org, rng: random.Random, repo: GhRepo, number: int, created: datetime,
                 now: datetime, author: str) -> None:
        self.org, self.rng, self.repo, self.number = org, rng, repo, number
        self.now = min(now, _archived_limit(repo, now))
        self.t = created
        self.created = created
        self.author = author  # pid
        self.login = org.people[author].login
        self.events: list[GhEvent] = []
        self.draft = False
        self.labels: list[str] = []
        self.assignees: list[str] = []
        self.open_user: set[str] = set()  # logins with an open request
        self.open_team: set[str] = set()  # team slugs with an open request
        self.reviews: list[GhEvent] = []
        self.dismissals: list[tuple[GhEvent, GhEvent]] = []  # (review_dismissed, the review)
        self.state = "open"
        self.closed_at: datetime | None = None
        self.merged_at: datetime | None = None
        self.merged_by: str | None = None
        self.speed = 1.0
        self.commits = 0

    def team(self) -> str:
        return self.repo.team

    def member(self, team: str | None = None, exclude: str | None = None) -> str:
        ms = [p for p in self.org.members_at(team or self.team(), self.t) if p != exclude]
        return self.rng.choice(ms) if ms else self.org.lead(team or self.team())

    def wait(self, pid: str, median_h: float, sigma: float = 1.0) -> datetime:
        t = step(self.rng, self.org.clock(pid), self.t, median_h * self.speed, sigma)
        if t > self.now:
            raise StopWalk
        self.t = t
        return t

    def ev(self, event: str, actor_login: str, **kw) -> GhEvent:
        e = GhEvent(id=0, event=event, actor=actor_login, created_at=self.t, **kw)
        self.events.append(e)
        return e

    def login_of(self, pid: str) -> str:
        return self.org.people[pid].login

    def commit(self, n: int = 1) -> None:
        for _ in range(n):
            self.commits += 1
            self.ev("committed", self.login, commit_sha=sha(self.repo.full_name, self.number, self.commits))

    def request(self, first: bool = False) -> None:
        """Request reviewers: users of the team, sometimes of another team, or the team itself."""
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            slug = self.org.teams[self.team()].github_slug
            self.open_team.add(slug)
            self.ev("review_requested", self.login, requested_team=slug)
            return
        n = 1 if rng.random() < 0.7 else 2
        for _ in range(n):
            other = rng.random() < 0.15
            pid = self.member(rng.choice([k for k in self.org.teams if k != self.team()]) if other else None,
                              exclude=self.author)
            login = self.login_of(pid)
            if login in self.open_user:
                continue
            self.open_user.add(login)
            self.ev("review_requested", self.login, requested_reviewer=login)

    def review(self, reviewer_login: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.12:  # rubber stamp
            self.t = self.t + timedelta(seconds=rng.randint(20, 280))
            if self.t > self.now:
                raise StopWalk
            state, body = "APPROVED", ""
        else:
            self.wait(self.org.by_login[reviewer_login], 4, 1.5)
            state = rng.choices(["APPROVED", "CHANGES_REQUESTED", "COMMENTED"], [0.6, 0.25, 0.15])[0]
            body = rng.choice({"APPROVED": APPROVE_BODIES, "CHANGES_REQUESTED": CHANGES_BODIES,
                               "COMMENTED": COMMENT_BODIES}[state])
        e = self.ev("reviewed", reviewer_login, review_state=state, review_body=body)
        self.reviews.append(e)
        self.open_user.discard(reviewer_login)
        if reviewer_login != self.login:  # any non-author review answers the team's request
            self.open_team.clear()
        return state

    def reviewers_for_open(self) -> list[str]:
        out = sorted(self.open_user)
        if self.open_team:  # a current member of the requested GitHub team answers for it
            slug = min(self.open_team)
            key = next(k for k, t in self.org.teams.items() if t.github_slug == slug)
            now_members = set(self.org.team_members.get(f"{self.repo.org}/{slug}", ()))
            cands = [p for p in self.org.members_at(key, self.t)
                     if p != self.author and self.login_of(p) in now_members]
            if cands:
                out.append(self.login_of(self.rng.choice(cands)))
        return out

    def noise(self) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            self.commit(rng.randint(1, 3))
        elif r < 0.75:
            self.ev("commented", self.login_of(self.member()))
        elif r < 0.88:
            self.toggle_label()
        else:
            self.toggle_assignee()

    def toggle_label(self) -> None:
        label = self.rng.choice(TRIAGE_LABELS)
        if label in self.labels:
            self.labels.remove(label)
            self.ev("unlabeled", self.login, label=label)
        else:
            self.labels.append(label)
            self.ev("labeled", self.login, label=label)

    def toggle_assignee(self) -> None:
        who = self.login_of(self.member())
        if who in self.assignees:
            self.assignees.remove(who)
            self.ev("unassigned", self.login, assignee=who)
        else:
            self.assignees.append(who)
            self.ev("assigned", self.login, assignee=who)

    def relevant(self) -> int:
        return sum(e.event not in NOISE for e in self.events)

    def withdraw(self) -> None:
        """The author removes one open request (a user's, else the team's)."""
        if self.open_user:
            login = min(self.open_user)
            self.open_user.discard(login)
            self.ev("review_request_removed", self.login, requested_reviewer=login)
        elif self.open_team:
            slug = min(self.open_team)
            self.open_team.discard(slug)
            self.ev("review_request_removed", self.login, requested_team=slug)

    def ping_pong(self, target: int) -> None:
        """A contested change: review rounds, swapped reviewers and triage until `target` read items."""
        rng = self.rng
        self.speed = 0.1
        while self.relevant() < target:
            if not (self.open_user or self.open_team):
                self.wait(self.author, 1)
                self.request()
                continue
            r = rng.random()
            if r < 0.12:  # the reviewer is busy: withdraw the request and ask someone else
                self.wait(self.author, 1)
                self.withdraw()
                if not (self.open_user or self.open_team):
                    self.request()
            elif r < 0.3:
                self.wait(self.author, 1)
                self.toggle_label() if rng.random() < 0.55 else self.toggle_assignee()
            elif r < 0.38:
                self.wait(self.author, 1)
                self.noise()
            else:
                states = [self.review(login) for login in self.reviewers_for_open()]
                if not states:  # no current member can answer the team's request
                    self.wait(self.author, 1)
                    self.withdraw()
                    continue
                self.wait(self.author, 3, 1.2)
                self.commit(rng.randint(1, 2))
                if "APPROVED" in states and rng.random() < 0.25:  # the new commits dismiss the approval
                    rev = next(e for e in reversed(self.reviews) if e.review_state == "APPROVED")
                    d = self.ev("review_dismissed", self.login, dismissed_state="APPROVED")
                    rev.review_state = "DISMISSED"
                    self.dismissals.append((d, rev))
                    self.re_request(rev.actor)
                else:
                    self.re_request()
        self.speed = 1.0

    def close(self, merge: bool, actor_pid: str) -> None:
        actor = self.login_of(actor_pid)
        if merge:
            self.ev("merged", actor, commit_sha=sha(self.repo.full_name, self.number, "merge"))
            self.merged_at, self.merged_by = self.t, actor
        self.ev("closed", actor)
        self.state, self.closed_at = "closed", self.t

    def run(self, churn: int = 0, bot: bool = False) -> None:
        rng = self.rng
        try:
            if bot:
                self.labels.append("dependencies")
                self.ev("labeled", self.login, label="dependencies")
            else:
                self.draft = rng.random() < 0.25 and not churn  # a contested change is under review
                if rng.random() < 0.3:
                    label = rng.choice(["enhancement", "bug", "chore"])
                    self.labels.append(label)
                    self.ev("labeled", self.login, label=label)
                if rng.random() < 0.2:
                    self.assignees.append(self.login)
                    self.ev("assigned", self.login, assignee=self.login)
            if bot or (not self.draft and rng.random() < 0.45):
                self.request(first=True)  # reviewers requested as the PR opens
            if churn:
                self.ping_pong(churn)
            if self.org.intensity > 1:  # busier pull requests: more commits and discussion
                for _ in range(int(rng.expovariate(1 / (4 * (self.org.intensity - 1))))):
                    self.wait(self.author, 1)
                    self.noise()
            if self.draft:
                for _ in range(rng.randint(0, 3)):
                    self.wait(self.author, 3)
                    self.commit()
                self.wait(self.author, 8, 1.2)
                self.draft = False
                self.ev("ready_for_review", self.login)
            if not (self.open_user or self.open_team):
                self.wait(self.author, 0.5, 1.2)
                self.request()
            approved = self.review_rounds(bot)
            self.wait(self.author, 2, 1.3)
            r = rng.random()
            if r < 0.04:  # closed, reopened, carried on
                self.close(False, self.author)
                self.wait(self.author, 10)
                self.state, self.closed_at = "open", None
                self.ev("reopened", self.login)
                self.wait(self.author, 4)
                r = 0.5
            if r < 0.12 and not approved:
                self.close(False, self.author)
            elif r < 0.16 and self.open_user:  # merged while a review is still pending
                self.close(True, self.author)
            else:
                if not approved and (self.open_user or self.open_team):
                    self.review_rounds(bot, max_rounds=1)
                merger = self.author if rng.random() < 0.7 else self.member(exclude=self.author)
                self.close(True, merger)
        except StopWalk:
            pass

    def review_rounds(self, bot: bool, max_rounds: int = 4) -> bool:
        rng = self.rng
        approved = False
        for rnd in range(max_rounds):
            if rng.random() < 0.15:
                for _ in range(rng.randint(1, 3)):
                    self.wait(self.author, 3)
                    self.noise()
            if rng.random() < 0.06 and self.open_user:  # request withdrawn
                self.wait(self.author, 2)
                login = min(self.open_user)
                self.open_user.discard(login)
                self.ev("review_request_removed", self.login, requested_reviewer=login)
                if not (self.open_user or self.open_team):
                    self.request()
            if rng.random() < 0.03 and not bot and rnd == 0:  # back to draft for a while
                self.wait(self.author, 1)
                self.ev("convert_to_draft", self.login)
                self.wait(self.author, 6)
                self.commit()
                self.ev("ready_for_review", self.login)
            states = [self.review(login) for login in self.reviewers_for_open()]
            if not states:
                return approved
            if rng.random() < 0.03 and not bot:  # the dependency bot approves too
                self.ev("reviewed", self.org.people[self.org.bot].login, review_state="APPROVED",
                        review_body="Auto-approved: dependency-only change")
            if "CHANGES_REQUESTED" in states or ("COMMENTED" in states and rng.random() < 0.5):
                self.wait(self.author, 6, 1.2)
                self.commit(rng.randint(1, 2))
                self.re_request()
                continue
            if "APPROVED" in states:
                approved = True
                if rng.random() < 0.1 and rnd < max_rounds - 1:  # new commits dismiss the approval
                    self.wait(self.author, 3)
                    self.commit()
                    rev = next(e for e in reversed(self.reviews) if e.review_state == "APPROVED")
                    d = self.ev("review_dismissed", self.login, dismissed_state="APPROVED")
                    rev.review_state = "DISMISSED"
                    self.dismissals.append((d, rev))
                    self.re_request(rev.actor)
                    approved = False
                    continue
                return True
            return approved
        return approved

    def re_request(self, login: str | None = None) -> None:
        last = [e.actor for e in self.reviews if e.actor != self.login and not e.actor.endswith("[bot]")]
        login = login or (last[-1] if last else None)
        if login and login not in self.open_user:
            self.open_user.add(login)
            self.ev("review_requested", self.login, requested_reviewer=login)
        elif not login:
            self.request()


LINKED_SHARE = 0.35  # pull requests that name a Jira issue (a share of the issues get one, some two)
OTHER_TEAM_SHARE = 0.15  # of those, an issue of another team than the repository's


class IssueKeys:
    """The Jira issues a pull request may implement: (created, key, team), oldest first."""

    def __init__(self, issues: list[tuple[datetime, str, str]]) -> None:
        self.issues = sorted(issues)
        self.times = [x[0] for x in self.issues]

    def pick(self, rng: random.Random, before: datetime, team: str) -> str | None:
        """A recent issue created before `before`: mostly of `team`, sometimes of another team."""
        recent = self.issues[max(0, bisect.bisect_left(self.times, before) - 60):bisect.bisect_left(self.times, before)]
        other = rng.random() < OTHER_TEAM_SHARE
        cands = [x[1] for x in recent if (x[2] != team) == other]
        return rng.choice(cands) if cands else None


def name_issue(pull: GhPull, rng: random.Random, keys: IssueKeys, team: str) -> None:
    """Maybe make `pull` name a Jira issue in its branch (as typed: sometimes lower case), title or body."""
    if pull.author.endswith("[bot]") or rng.random() >= LINKED_SHARE:
        return
    key = keys.pick(rng, pull.created_at, team)
    if key is None:
        return
    where = rng.random()
    if where < 0.5:
        typed = key.lower() if rng.random() < 0.3 else key
        pull.head_ref = f"{pull.author}/{typed}-{pull.title.split()[-1].lower()}"
    elif where < 0.85:
        pull.title = f"{key}: {pull.title}"
    else:
        pull.body = f"{pull.title}.\n\nCloses {key}"


def _archived_limit(repo: GhRepo, now: datetime) -> datetime:
    from sandbox.gen_org import ARCHIVED_AT
    return ARCHIVED_AT if repo.archived else now


def build_pull(org: Org, rng: random.Random, repo: GhRepo, number: int, pr_id: int, created: datetime,
               now: datetime, churn: int = 0) -> tuple[GhPull, list[tuple[GhEvent, GhEvent]]]:
    bot = rng.random() < 0.08 and not churn
    if bot:
        author = org.bot
    else:
        author = PullWalk(org, rng, repo, number, created, now, org.bot).member()
        if rng.random() < 0.12:
            author = PullWalk(org, rng, repo, number, created, now, org.bot).member(
                rng.choice([k for k in org.teams if k != repo.team]))
    w = PullWalk(org, rng, repo, number, created, now, author)
    w.run(churn, bot)
    if bot:
        dep = rng.choice(DEPS)
        title = f"Bump {dep} from 1.{rng.randint(0, 9)}.{rng.randint(0, 9)} to 1.{rng.randint(10, 20)}.0"
    else:
        title = rng.choice(PR_TITLES).format(rng.choice(TOPICS))
    updated = max([created] + [e.created_at for e in w.events])
    pull = GhPull(repo=repo.full_name, number=number, id=pr_id, node_id=f"PR_kwDOG{pr_id:010d}", title=title,
                  author=w.login, created_at=created, updated_at=updated, closed_at=w.closed_at,
                  merged_at=w.merged_at, merged_by=w.merged_by, draft=w.draft, state=w.state, labels=w.labels,
                  assignees=w.assignees, events=w.events,
                  head_ref=f"{'depbot' if bot else w.login}/change-{number}")
    return pull, w.dismissals


class IssueWalkGh(PullWalk):
    """A GitHub issue: assignment, decision and blocked labels, close and reopen."""

    def run_issue(self) -> None:
        rng = self.rng
        try:
            if rng.random() < 0.5:
                label = rng.choice(["bug", "enhancement", "question"])
                self.labels.append(label)
                self.ev("labeled", self.login, label=label)
            self.wait(self.author, 12, 1.3)
            owner = self.member()
            self.assignees.append(self.login_of(owner))
            self.ev("assigned", self.login_of(owner), assignee=self.login_of(owner))
            for _ in range(rng.randint(0, int(3 * self.org.intensity))):
                self.wait(owner, 10, 1.2)
                r = rng.random()
                if r < 0.35:
                    label = "needs-decision" if rng.random() < 0.7 else "needs-discussion"
                    self.add_label(owner, label)
                    decider = self.member(rng.choice([k for k in self.org.teams if k != self.team()])) \
                        if rng.random() < 0.45 else self.org.lead(self.team())
                    self.wait(decider, 16, 1.4)
                    if rng.random() < 0.15:
                        self.close_issue(decider, "not_planned")
                        return
                    self.remove_label(decider, label)
                elif r < 0.5:
                    self.add_label(owner, "blocked")
                    self.wait(owner, 20, 1.3)
                    self.remove_label(owner, "blocked")
                elif r < 0.65:
                    new = self.member(exclude=owner)
                    self.ev("unassigned", self.login_of(owner), assignee=self.login_of(owner))
                    self.assignees.remove(self.login_of(owner))
                    owner = new
                    self.assignees.append(self.login_of(owner))
                    self.ev("assigned", self.login_of(owner), assignee=self.login_of(owner))
                else:
                    self.ev("commented", self.login_of(self.member()))
            self.wait(owner, 16, 1.3)
            self.close_issue(owner, "completed" if rng.random() < 0.88 else "not_planned")
            if rng.random() < 0.08:
                self.wait(self.author, 30)
                self.state, self.closed_at, self.state_reason = "open", None, None
                self.ev("reopened", self.login)
                self.wait(owner, 10)
                self.close_issue(owner, "completed")
        except StopWalk:
            pass

    def add_label(self, pid: str, label: str) -> None:
        self.labels.append(label)
        self.ev("labeled", self.login_of(pid), label=label)

    def remove_label(self, pid: str, label: str) -> None:
        self.labels.remove(label)
        self.ev("unlabeled", self.login_of(pid), label=label)

    def close_issue(self, pid: str, reason: str) -> None:
        self.ev("closed", self.login_of(pid))
        self.state, self.closed_at, self.state_reason = "closed", self.t, reason


def build_gh_issue(org: Org, rng: random.Random, repo: GhRepo, number: int, iid: int, created: datetime,
                   now: datetime) -> GhIssue:
    probe = PullWalk(org, rng, repo, number, created, now, org.bot)
    author = probe.member() if rng.random() < 0.7 else probe.member(rng.choice(list(org.teams)))
    w = IssueWalkGh(org, rng, repo, number, created, now, author)
    w.state_reason = None
    w.run_issue()
    updated = max([created] + [e.created_at for e in w.events])
    return GhIssue(repo=repo.full_name, number=number, id=iid, node_id=f"I_kwDOG{iid:010d}",
                   title=f"{rng.choice(['Bug', 'Idea', 'Question'])}: {rng.choice(TOPICS)}", author=w.login,
                   created_at=created, updated_at=updated, closed_at=w.closed_at, state=w.state,
                   state_reason=w.state_reason, labels=w.labels, assignees=w.assignees, events=w.events)
