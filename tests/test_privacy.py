"""Privacy in the published file: pseudonyms with a key from the environment, small teams never by name."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.cli import main
from pipelines.publish import PublishError, publish
from tests.published import KEY, SMALL_TEAM, Built, build


def text_values(path) -> dict[str, set[str]]:
    """Every distinct text value of every published table, per schema.table.column (comma lists split)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = con.execute("select schema_name, table_name, column_name from duckdb_columns() "
                           "where database_name = current_database() and data_type = 'VARCHAR'").fetchall()
        out = {}
        for s, t, c in cols:
            vals = {v for (v,) in con.execute(f'select distinct "{c}" from "{s}"."{t}" where "{c}" is not null'
                                              ).fetchall()}
            out[f"{s}.{t}.{c}"] = vals | {p for v in vals if "," in v for p in v.split(",")}
        return out
    finally:
        con.close()


def people(path) -> list[tuple[str, str, str]]:
    """(raw id, canonical id, display name) of everyone in the working warehouse."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        aliases = "core.person_aliases" if con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'core' and table_name = 'person_aliases'"
        ).fetchone()[0] else "core.people"  # one table per alias, or the aliases in core.people itself
        return con.execute(f"select a.raw_id, a.person_id, p.display_name from {aliases} as a "
                           "join core.people as p using (person_id)").fetchall()
    finally:
        con.close()


def team_columns(values: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: v for k, v in values.items() if k.endswith((".team", "_team"))}


def test_pseudonymised_file_names_nobody_and_keeps_the_numbers(bi: Built, small_org, tmp_path) -> None:
    a = build(tmp_path / "a", small_org, pseudonymize=True, warehouse=bi.warehouse)
    who = people(bi.warehouse)
    ids = {r for r, _, _ in who} | {p for _, p, _ in who}
    names = {n for _, _, n in who if n}
    values = text_values(a.published)
    leaks = {col: sorted(v & (ids | names))[:3] for col, v in values.items() if v & (ids | names)}
    assert leaks == {}
    plain = text_values(bi.published)  # without pseudonyms the same columns do name people
    assert any(v & ids for v in plain.values()) and plain["dims.people.display_name"] & names
    con = duckdb.connect(str(a.published), read_only=True)
    try:
        persons = con.execute("select person_id, display_name from dims.people").fetchall()
        handoffs = con.execute("select count(*), count(distinct to_owner) from marts.handoffs").fetchone()
        pseudonymized = con.execute("select pseudonymized from meta.snapshot").fetchone()[0]
        joined = con.execute("select count(*) from marts.handoffs as h join dims.people as p "
                             "on p.person_id = h.to_owner").fetchone()[0]
    finally:
        con.close()
    assert pseudonymized is True
    assert len(persons) == len({p for _, p, _ in who}) and all(p.startswith("person:") for p, _ in persons)
    assert joined > 0  # the marts and dims.people still join on the pseudonyms
    con = duckdb.connect(str(bi.published), read_only=True)
    try:
        assert con.execute("select count(*), count(distinct to_owner) from marts.handoffs").fetchone() == handoffs
    finally:
        con.close()
    # stable with the same key, different with another, and the key itself is nowhere
    again = build(tmp_path / "b", small_org, pseudonymize=True, warehouse=bi.warehouse)
    assert text_values(again.published)["dims.people.person_id"] == values["dims.people.person_id"]
    other = tmp_path / "c" / "flowlens.duckdb"
    publish(a.warehouse, other, a.config, environ={"FLOWLENS_PSEUDONYM_KEY": "another key, also long enough"})
    assert not text_values(other)["dims.people.person_id"] & values["dims.people.person_id"]
    assert KEY.encode() not in a.published.read_bytes()
    assert not any(KEY in v for vals in values.values() for v in vals)


def test_a_small_team_is_other_in_every_team_column_and_its_members_are_pseudonyms(bi: Built) -> None:
    con = duckdb.connect(str(bi.warehouse), read_only=True)
    try:
        members = {p for (p,) in con.execute("select person_id from core.memberships where team = ?",
                                             [SMALL_TEAM]).fetchall()}
        raw_ids = {r for r, p, _ in people(bi.warehouse) if p in members}
        slug = con.execute("select github_team from config.teams where team = ?", [SMALL_TEAM]).fetchone()[0]
        named = {t for t, in con.execute(
            "select team from marts.item_flow union select from_team from marts.handoffs "
            "union select requested_of_team from marts.approval_waits "
            "union select waited_on_team from marts.wait_intervals").fetchall()}
    finally:
        con.close()
    assert SMALL_TEAM in named and len(members) == 3  # the working warehouse names it
    working = text_values(bi.warehouse)
    assert any(v & members for k, v in working.items() if k.startswith("marts."))
    values = text_values(bi.published)
    teams = team_columns(values)
    assert {"marts.item_flow.team", "marts.handoffs.from_team", "marts.handoffs.to_team",
            "marts.approval_waits.requested_of_team", "marts.wait_intervals.waited_on_team",
            "marts.decision_waits.decided_by_team", "marts.decision_waits.owner_team", "dims.people.team",
            "dims.teams.team"} <= set(teams)
    assert {k for k, v in teams.items() if SMALL_TEAM in v} == set()
    assert "other" in values["marts.item_flow.team"] and "other" in values["dims.teams.team"]
    leaks = {k: sorted(v & (members | raw_ids)) for k, v in values.items() if v & (members | raw_ids)}
    assert leaks == {}
    assert not any(v.endswith("/" + slug) for vals in values.values() for v in vals if v.startswith("github-team:"))
    assert not any(SMALL_TEAM == v for vals in values.values() for v in vals)
    # people of the other teams keep their ids and names
    assert sum(1 for p in values["dims.people.person_id"] if p.startswith("person:")) == 3


def test_pseudonymize_without_a_key_stops_with_one_line(bi: Built, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("FLOWLENS_PSEUDONYM_KEY", raising=False)
    cfg = bi.config.model_copy(update={"privacy": bi.config.privacy.model_copy(update={"pseudonymize": True})})
    with pytest.raises(PublishError, match="FLOWLENS_PSEUDONYM_KEY") as e:
        publish(bi.warehouse, tmp_path / "p" / "flowlens.duckdb", cfg, environ={})
    assert "\n" not in str(e.value)
    assert not (tmp_path / "p" / "flowlens.duckdb").exists()
    toml = tmp_path / "flowlens.toml"
    toml.write_text("[privacy]\npseudonymize = true\n")
    assert main(["check", "--config", str(toml)]) != 0
    assert "FLOWLENS_PSEUDONYM_KEY" in capsys.readouterr().err
