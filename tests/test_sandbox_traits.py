"""The sandbox's messy-site traits, on by default at `small` so `make test` covers them."""

from __future__ import annotations

import json

import pytest

from sandbox import jira_api
from sandbox.gen_migration import MIGRATION_PROJECTS
from sandbox.gen_pages import _jira_ctx
from sandbox.generator import generate


@pytest.fixture(scope="module")
def stores():
    return [generate("small", seed) for seed in (1, 2, 3)]


def test_a_workflow_migration_deletes_statuses_mid_history_and_a_bulk_close_follows(stores) -> None:
    seen_names, migrations, bulk_closes = set(), 0, 0
    for store in stores:
        gone = store.jira_deleted_statuses
        listed = {s["id"] for s in json.loads(jira_api._statuses(_jira_ctx(store, "cloud", "https://x")).body)}
        assert gone and not set(gone) & listed  # /status no longer lists them
        for issue in store.jira_issues:
            assert issue.status not in gone  # nothing stays in a deleted status
            for h in issue.histories:
                fields = [it.field for it in h.items]
                for it in h.items:
                    if it.field == "status" and it.to in gone:
                        assert issue.project in MIGRATION_PROJECTS
                        seen_names.add(it.to_string)
                        if gone[it.to].state == "done":  # entered with the resolution set in the same history
                            assert "resolution" in fields
                    if it.field == "status" and it.from_ in gone and gone[it.from_].state == "done" \
                            and store.jira_statuses.get(it.to) and store.jira_statuses[it.to].state == "done":
                        bulk_closes += 1
                migrations += "Workflow" in fields
    assert migrations > 0 and bulk_closes > 0
    assert {"Resolved", "Erledigt", "已完成", "Dev Review"} <= seen_names


def test_status_changes_chain_through_the_migration(stores) -> None:
    for store in stores:
        for issue in store.jira_issues:
            current = None
            for h in sorted(issue.histories, key=lambda h: (h.created, h.id)):
                for it in h.items:
                    if it.field == "status":
                        assert current is None or it.from_ == current, issue.key
                        current = it.to
            assert current is None or current == issue.status
