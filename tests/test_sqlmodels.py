"""Model dependencies are read from the SQL by DuckDB's parser; a header that disagrees names the file and table."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.sqlmodels import ModelError, load_models
from pipelines.warehouse import SQL_DIR, models

ROOT = Path(__file__).resolve().parent.parent


def copy_sql(tmp_path: Path) -> Path:
    dst = tmp_path / "sql"
    shutil.copytree(SQL_DIR, dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_every_header_matches_what_the_sql_reads():
    by_name = {m.name: m for m in models()}
    for m in by_name.values():
        assert set(m.declared) == set(m.depends_on), m.path
        assert m.depends_on, f"{m.path} reads nothing"
    # the drift the headers had: listed but never read
    assert "core.jira_changes" not in by_name["marts.handoffs"].depends_on
    for name in ("marts.reversals", "marts.team_weekly", "core.item_events"):
        assert "core.work_items" not in by_name[name].depends_on, name
    # reads through a macro: core.worked / core.hour_no live in calendar_intervals.sql, core.team_of in teams.sql
    assert "core.calendar_intervals" in by_name["marts.approval_waits"].depends_on
    assert {"core.teams", "core.memberships"} <= set(by_name["marts.handoffs"].depends_on)
    # CTE names are not tables; config.* is the runner's, not a dependency
    assert all(d.count(".") == 1 and not d.startswith("config.") for m in by_name.values() for d in m.depends_on)


def test_a_read_the_header_does_not_list_names_the_file_and_table(tmp_path):
    sql = copy_sql(tmp_path)
    handoffs = sql / "marts" / "handoffs.sql"
    edit(handoffs, "from core.work_items", "from core.work_items\n    where item_id not in (select item_id from "
         "marts.reversals)")
    with pytest.raises(ModelError) as e:
        load_models(sql)
    assert str(handoffs) in str(e.value) and "marts.reversals" in str(e.value)
    assert "does not list" in str(e.value) and "\n" not in str(e.value)


def test_a_dropped_read_names_the_file_and_table(tmp_path):
    sql = copy_sql(tmp_path)
    unmapped = sql / "core" / "unmapped_statuses.sql"
    text = unmapped.read_text()
    body = text[text.index("create or replace view"):]
    unmapped.write_text(text.replace(body, "create or replace view core.unmapped_statuses as\n"
                                           "select 'x' as project_key, 'y' as status_name\n"))
    with pytest.raises(ModelError, match=re.escape(f"{unmapped}: its `-- depends_on:` header lists "
                                                   "core.status_intervals, which it does not read")):
        load_models(sql)


def test_cte_names_macros_and_unqualified_tables(tmp_path):
    sql = tmp_path / "sql"
    for layer in ("staging", "core", "marts"):
        (sql / layer).mkdir(parents=True)
    (sql / "core" / "base.sql").write_text(
        "-- depends_on: raw.things\ncreate or replace table core.base as select * from raw.things;\n"
        "create or replace macro core.big(n) as n > (select count(*) from core.base);\n")
    mart = sql / "marts" / "uses.sql"
    mart.write_text("-- The things that are big.\n-- depends_on: core.base\n"
                    "create or replace table marts.uses as\nwith base as (select * from core.base),\n"
                    "big as (select * from base where core.big(id))\nselect * from big;\n"
                    "comment on table marts.uses is 'Big things; it''s a test.';\n"
                    'comment on column marts.uses."count" is \'A quoted column.\';\n')
    ms = {m.name: m for m in load_models(sql)}
    assert ms["marts.uses"].depends_on == ("core.base",)  # `base` and `big` are CTEs; core.big is base's macro
    assert ms["marts.uses"].description == "Big things; it's a test."
    assert ms["marts.uses"].column_comments == {"count": "A quoted column."}
    assert ms["core.base"].description == "" and ms["core.base"].macros == ("core.big",)
    assert [m.name for m in load_models(sql)] == ["core.base", "marts.uses"]
    mart.write_text(mart.read_text().replace("from big", "from big, things"))
    with pytest.raises(ModelError, match="reads 'things' without a schema"):
        load_models(sql)


def test_flowlens_check_names_the_drifted_model(tmp_path):
    """`flowlens check` on a copy of the code whose model reads a table its header does not list."""
    for part in ("pipelines", "connectors", "sandbox", "sql"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    edit(tmp_path / "sql" / "marts" / "reversals.sql", "-- depends_on: ", "-- depends_on: core.people, ")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_"))}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check"], cwd=tmp_path,
                          env=env | {"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    line = [ln for ln in proc.stderr.splitlines() if "reversals.sql" in ln]
    assert len(line) == 1 and "core.people" in line[0] and "does not read" in line[0], proc.stderr
