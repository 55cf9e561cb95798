"""The repository carries its own metric contract, API documents and recorded fixtures.

Their sources live in the developers' `../shared` beside the checkout; a user's clone has none, so this
module is the only place that looks there, to say which copy is stale.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared"  # the developers' originals; absent from a user's clone
RECORDED = "tests/fixtures/github-recorded"
COPIES = {  # repository copy -> its source under ../shared
    "docs/metrics.md": "METRICS.md",
    "sandbox/specs/jira-subset-search-changelog-status.json": "specs/jira-subset-search-changelog-status.json",
    "sandbox/specs/github-subset-pulls-reviews-timeline.json": "specs/github-subset-pulls-reviews-timeline.json",
    "sandbox/specs/github-graphql-schema.graphql": "specs/github-graphql-schema.graphql",
    "sandbox/specs/github-graphql-schema.LICENSE.md": "specs/github-graphql-schema.LICENSE.md",
    "sandbox/specs/jsm-servicedeskapi-approval-example.json": "specs/jsm-servicedeskapi-approval-example.json",
    RECORDED: "fixtures/github-recorded",
}


def _files(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.mark.parametrize("copy", sorted(COPIES))
def test_each_copy_is_in_the_repository_and_matches_its_source(copy):
    mine = _files(ROOT / copy)
    assert mine and all(mine.values()), f"{copy} is missing or empty"
    for name, data in mine.items():
        if name.endswith(".json") or copy.endswith(".json"):
            json.loads(data)  # a truncated copy fails here
    source = SOURCE / COPIES[copy]
    if source.exists():
        theirs = _files(source)
        how = f"cp ../shared/{COPIES[copy]}/* {copy}/" if source.is_dir() else f"cp ../shared/{COPIES[copy]} {copy}"
        stale = sorted(n or source.name for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
        assert not stale, (f"{copy} differs from ../shared/{COPIES[copy]} ({', '.join(stale)}): ../shared is the "
                           f"source, update the repository's copy: {how}")


def test_the_recorded_fixtures_keep_their_licence():
    assert "MIT License" in (ROOT / RECORDED / "LICENSE").read_text()


def test_the_contract_names_every_mart_table_the_sql_builds():
    # the rulings define what the contract does not state yet (issue 16's marts), until the contract takes them in
    contract = (ROOT / "docs" / "metrics.md").read_text() + (ROOT / "docs" / "metrics-rulings.md").read_text()
    built = {m.group(1) for f in (ROOT / "sql" / "marts").glob("*.sql")
             for m in re.finditer(r"create or replace table marts\.(\w+)", f.read_text())}
    assert len(built) >= 8
    missing = sorted(t for t in built if not re.search(rf"`(marts\.)?{t}`", contract))
    assert not missing, f"neither docs/metrics.md nor docs/metrics-rulings.md defines the mart tables {missing}"


def test_nothing_else_names_the_developers_shared_folder():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    names = re.compile(r"(\.\./|/work/)shared\b|[\"']shared[\"'/]")
    this = Path(__file__).resolve().relative_to(ROOT).as_posix()
    files = [f for f in tracked.split("\0") if f and f != this and not f.startswith(("tests/fixtures/", "sandbox/specs/"))]
    assert len(files) > 50
    hits = [f"{f}:{n}" for f in files for n, line in enumerate((ROOT / f).read_text(errors="replace").splitlines(), 1)
            if names.search(line)]
    assert hits == [], "only tests/test_repository_complete.py may name ../shared (a user's clone has none)"
