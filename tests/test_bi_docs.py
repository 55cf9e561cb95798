"""docs/bi.md never rots: its example queries and its notebook example run against the sandbox's published file."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.published import Built, duckdb_1x

DOC = Path(__file__).resolve().parent.parent / "docs" / "bi.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


QUERIES = blocks("sql")


def test_the_doc_has_the_questions() -> None:
    text = DOC.read_text(encoding="utf-8")
    for q in ("Which approvals wait longest", "How many handoffs does a typical item go through",
              "Where are decisions made", "What is blocked right now, and on whom"):
        assert q in text
    assert len(QUERIES) >= 4


@pytest.mark.parametrize("n", range(len(QUERIES)))
def test_example_query_answers_on_duckdb_2_and_1x(bi: Built, n: int) -> None:
    query = QUERIES[n]
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    assert rows, f"no rows from:\n{query}"
    proc = subprocess.run([str(duckdb_1x()), "-readonly", "-json", str(bi.published), "-c", query],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == len(rows)


def test_notebook_example_runs(bi: Built, monkeypatch) -> None:
    monkeypatch.setenv("FLOWLENS_HOME", str(bi.published.parent.parent))
    (code,) = blocks("python")
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - the documented example, as a user runs it
    assert scope["flow"].height > 0 and scope["waits"].height > 0 and scope["people"].height > 0
