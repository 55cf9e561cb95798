"""Trait: a workflow migration on a Jira project, as real sites have them.

Before the migration the project's workflow finished issues in statuses the site later deleted ("Resolved",
"Shipped", "Erledigt", "已完成", each entered with the resolution set) and reviewed them in "Dev Review". At the
migration an admin moves every issue still in "Dev Review" to "Code Review" (a history with a `Workflow`
item, and a status item where the new workflow lacks the status: "Dev Review" -> "Code Review", "Ready for QA" ->
"To Do"); months later a bulk close moves every issue still in an old done status to "Done", and the old statuses
are deleted: `/status` no longer lists them, only old changelogs keep their ids and names. The true flow
states stay known here (`Store.jira_deleted_statuses`), so the truth oracle needs no rule to find them.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sandbox.gen_jira import item
from sandbox.model import JiraChangeItem, JiraHistory, JiraIssue, JiraStatus

MIGRATION_PROJECTS = ("PLAT",)  # on by default: `make test`'s small organisation covers it
MIGRATION_AT = 0.3  # share of the history span before the migration
BULK_CLOSE_AFTER = timedelta(days=60)
# id, name, category, true state (the names: one by pattern, one by resolution only, German, Chinese)
DELETED = [("10040", "Resolved", "done", "done"), ("10041", "Shipped", "done", "done"),
           ("10042", "Erledigt", "done", "done"), ("10043", "已完成", "done", "done"),
           ("10044", "Dev Review", "indeterminate", "approval")]
OLD_DONE = ["10040", "10041", "10042", "10043"]
DONE, CODE_REVIEW, OLD_REVIEW = "10010", "10002", "10044"
# the new workflow has no "Ready for QA": the migration sends those issues back to "To Do"
MIGRATED = {OLD_REVIEW: CODE_REVIEW, "10003": "10000"}
FINISHED = {DONE, "10011", *OLD_DONE}


def deleted_statuses() -> dict[str, JiraStatus]:
    return {sid: JiraStatus(sid, name, cat, state) for sid, name, cat, state in DELETED}


def migrate(issues: list[JiraIssue], names: dict[str, str], admin: str, start, now, seed: int, scale: str,
            projects: tuple[str, ...] = MIGRATION_PROJECTS) -> None:
    """Rewrites the issues of `projects` as if their old workflow had been migrated (see the module)."""
    at = start + (now - start) * MIGRATION_AT
    bulk = at + BULK_CLOSE_AFTER
    if bulk >= now:
        return
    for issue in issues:
        if issue.project not in projects:
            continue
        rng = random.Random(f"migration:{scale}:{seed}:{issue.key}")
        old_done = rng.choice(OLD_DONE)
        old = {DONE: old_done, CODE_REVIEW: OLD_REVIEW}  # old workflow's statuses for the new ones

        def status_item(frm: str, to: str) -> JiraChangeItem:
            return item("status", "status", frm, names[frm], to, names[to])

        current = _initial(issue)
        if issue.created < at:
            current = old.get(current, current)
        out: list[JiraHistory] = []
        migrated = closed = False
        for h in issue.histories:
            if not migrated and h.created >= at:
                migrated = True
                current = _migrate(out, issue, current, at, admin, status_item)
            if not closed and h.created >= bulk:
                closed = True
                if current in OLD_DONE:
                    out.append(JiraHistory(0, admin, bulk, [status_item(current, DONE)]))
                    current = DONE
            items = []
            for it in h.items:
                if it.field == "status":
                    to = old.get(it.to, it.to) if h.created < at else it.to
                    items.append(status_item(current, to))
                    current = to
                else:
                    items.append(it)
            out.append(JiraHistory(h.id, h.author, h.created, items))
        if not migrated:
            current = _migrate(out, issue, current, at, admin, status_item)
        if not closed and current in OLD_DONE:
            out.append(JiraHistory(0, admin, bulk, [status_item(current, DONE)]))
            current = DONE
        issue.histories = out
        issue.status = current
        issue.updated = max([issue.updated] + [h.created for h in out])


def _migrate(out: list[JiraHistory], issue: JiraIssue, current: str, at, admin: str, status_item) -> str:
    """The migration's history for an issue open at `at`: a Workflow item, and a status item if needed."""
    if issue.created >= at or current in FINISHED:
        return current
    items = [workflow_item()]
    if current in MIGRATED:
        items.append(status_item(current, MIGRATED[current]))
        current = MIGRATED[current]
    out.append(JiraHistory(0, admin, at, items))
    return current


def _initial(issue: JiraIssue) -> str:
    for h in issue.histories:
        for it in h.items:
            if it.field == "status":
                return it.from_
    return issue.status


def workflow_item() -> JiraChangeItem:
    return item("Workflow", None, "10100", "Software Simplified Workflow for Project PLAT", "10200",
                "PLAT Workflow v2")
