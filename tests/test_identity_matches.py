"""core.identity_matches (issue 17): a Jira account and a GitHub login are joined when both sites show the same
email (one account on each side), else the same display name held by one account on each side; configured
identities override; core.identities is the configured joins plus the automatic ones they leave."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.warehouse import SQL_DIR

JIRA = [  # user_id, display_name, email_address, is_app
    ("a1", "Ana Silva", "ana@acme.example", False),
    ("a2", "Bruno Costa", None, False),           # no email: joined by name
    ("a3", "Chen Li", None, False),               # name held twice on Jira: not joined
    ("a4", "Chen Li", None, False),
    ("a5", "Divya Rao", "DIVYA@acme.example ", False),  # case and spaces do not matter
    ("a6", "Elena Popova", "shared@acme.example", False),  # one address and name, two GitHub logins: not joined
    ("a7", "Farid Berg", None, False),            # name held twice on GitHub: not joined
    ("a8", "Automation", "auto@acme.example", True),  # an app is not a person
    ("a9", "Grace Kim", "grace@acme.example", False),  # configured otherwise: the configuration wins
]
GITHUB = [  # login, name, email
    ("ana-silva", "Ana S.", "ana@acme.example"),
    ("bruno", "Bruno Costa", None),
    ("chen", "Chen Li", None),
    ("divya", None, "divya@acme.example"),
    ("elena", "Elena Popova", "shared@acme.example"),
    ("elena2", "Elena Popova", "shared@acme.example"),
    ("farid", "Farid Berg", None),
    ("farid-b", "Farid Berg", None),
    ("autobot", None, "auto@acme.example"),
    ("grace", None, "grace@acme.example"),
]
CONFIGURED = [("a9", "grace-k")]


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("create schema staging; create schema core; create schema config")
    c.execute("create table staging.stg_jira__users (user_id varchar, display_name varchar, email_address varchar, "
              "is_app boolean)")
    c.executemany("insert into staging.stg_jira__users values (?, ?, ?, ?)", JIRA)
    c.execute("create table staging.stg_github__team_members (organization varchar, team varchar, login varchar, "
              "name varchar, email varchar, seen_at timestamptz)")
    c.executemany("insert into staging.stg_github__team_members values ('acme', 't', ?, ?, ?, '2025-01-01')", GITHUB)
    c.execute("create table config.identities (jira varchar, github varchar)")
    c.executemany("insert into config.identities values (?, ?)", CONFIGURED)
    for model in ("identity_matches", "identities"):
        c.execute((SQL_DIR / "core" / f"{model}.sql").read_text())
    yield c
    c.close()


def test_joins_by_email_then_by_a_unique_display_name(con):
    got = con.execute("select jira, github, reason from core.identity_matches order by jira").fetchall()
    assert got == [("a1", "ana-silva", "same email"), ("a2", "bruno", "same display name"),
                   ("a5", "divya", "same email")]


def test_configured_identities_override_and_are_listed_first(con):
    got = con.execute("select jira, github, source from core.identities order by jira").fetchall()
    assert got == [("a1", "ana-silva", "same email"), ("a2", "bruno", "same display name"),
                   ("a5", "divya", "same email"), ("a9", "grace-k", "configured")]
