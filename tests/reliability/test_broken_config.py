"""Broken configurations, as a user makes them: each is one line naming the key or the variable and the fix,
exit code 2, from `flowlens check` as from `flowlens run`; `run` stops before any API call (or, for what only a
server can tell, before any extract) and leaves an existing home as it was.

The table below is also the one in the note of issue 15: `python -m tests.reliability.test_broken_config`
prints each case with the line the user sees.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from sandbox.generator import generate
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]
PSEUDONYM_KEY = "a secret long enough for the keyed hashes"
# sandbox routes only an extract asks for (discovery lists projects, repositories, organisations)
EXTRACT_ROUTES = {"jira.bulkfetch", "jira.changelog", "jira.approvals", "jira.comments", "jira.search",
                  "github.pulls", "github.issues", "github.timeline", "github.reviews", "github.issue_events",
                  "github.repo_issue_events", "jira.statuses_search", "jira.field"}


@dataclass
class World:
    """What a case may use: the sandbox, a folder of its own, and the good configuration's pieces."""

    url: str
    tmp: Path
    project: str
    repo: str

    @property
    def good(self) -> str:
        return (f'[sources.jira]\nprojects = ["{self.project}"]\n\n'
                f'[sources.github]\nrepositories = ["{self.repo}"]\n\n')


@dataclass
class Case:
    id: str
    toml: Callable[[World], str | bytes | None] = lambda w: w.good  # None: --config names no file
    env: Callable[[World], dict[str, str | None]] = lambda w: {}  # None: unset
    expect: tuple[str, ...] = ()  # in the one line: the key or variable, and words of the fix
    server: bool = False  # only the server can tell: `run` may call the API, but extracts nothing
    config_path: Callable[[World], str] | None = None


def team(body: str, key: str = "pay") -> Callable[[World], str]:
    return lambda w: w.good + f'[[teams]]\nkey = "{key}"\n{body}\n'


CASES = [
    # the file
    Case("missing file", config_path=lambda w: str(w.tmp / "nope.toml"), expect=("nope.toml", "file not found",
                                                                                   "FLOWLENS_CONFIG")),
    Case("config is a folder", config_path=lambda w: str(w.tmp), expect=("is a folder", "path of flowlens.toml")),
    Case("TOML syntax error", lambda w: w.good + "[calendars.emea\ntimezone = 'UTC'\n",
         expect=("not valid TOML", "line 7", "fix the syntax")),
    Case("Latin-1 file", lambda w: (w.good + '[[teams]]\nkey = "pay"\nname = "Équipe paiements"\n').encode("latin-1"),
         expect=("line 9", "not UTF-8", "save it as UTF-8")),
    Case("unknown section", lambda w: w.good.replace("[sources.github]", "[source.github]"),
         expect=("source: unknown key", "did you mean 'sources'?")),
    Case("unknown key", lambda w: w.good.replace("projects =", "project ="),
         expect=("sources.jira.project: unknown key", "did you mean 'projects'?")),
    Case("a list given as a string", lambda w: w.good.replace(f'["{w.project}"]', f'"{w.project}"'),
         expect=("sources.jira.projects", "valid list")),
    Case("a number given as text", lambda w: w.good + "[report]\nweeks = \"twelve\"\n",
         expect=("report.weeks", "valid integer")),
    Case("a negative overlap", lambda w: w.good.replace("[sources.github]\n", "[sources.github]\noverlap_minutes = -5\n"),
         expect=("sources.github.overlap_minutes", "greater than or equal to 0")),
    Case("a boolean given as text", lambda w: w.good + "[publish]\nparquet = \"sometimes\"\n",
         expect=("publish.parquet", "valid boolean")),
    Case("unknown GitHub API kind", lambda w: w.good.replace("[sources.github]\n", "[sources.github]\napi = \"soap\"\n"),
         expect=("sources.github.api", "'graphql' or 'rest'")),
    Case("repository without its organisation", lambda w: w.good.replace(f'"{w.repo}"', '"payments-api"'),
         expect=("sources.github.repositories.0", "'org/repo'")),
    Case("organisation written as a repository",
         lambda w: w.good.replace("[sources.github]\n", f'[sources.github]\norganizations = ["{w.repo}"]\n'),
         expect=("sources.github.organizations.0", "sources.github.repositories")),
    Case("bad regular expression", lambda w: w.good + '[status_mapping]\npatterns = [{ pattern = "(review", '
                                                      'state = "approval" }]\n',
         expect=("status_mapping.patterns.0.pattern", "regular expression")),
    Case("unknown flow state", lambda w: w.good + f'[status_mapping.projects.{w.project}]\n"In Review" = "reviewing"\n',
         expect=(".In Review", "'approval'")),
    Case("bad time zone", lambda w: w.good + '[calendars.emea]\ntimezone = "Europe/Paaris"\n',
         expect=("calendars.emea.timezone", "IANA name")),
    Case("working hours reversed", lambda w: w.good + '[calendars.emea]\nhours = ["17:00", "09:00"]\n',
         expect=("calendars.emea", "start must be before the end")),
    Case("working hours not times", lambda w: w.good + '[calendars.emea]\nhours = ["9am", "5pm"]\n',
         expect=("calendars.emea.hours", "'HH:MM'")),
    Case("unknown workday", lambda w: w.good + '[calendars.emea]\nworkdays = ["monday"]\n',
         expect=("calendars.emea.workdays.0", "'mon'")),
    Case("impossible holiday", lambda w: w.good + '[calendars.emea]\nholidays = ["2024-13-01"]\n',
         expect=("calendars.emea.holidays.0", "valid date")),
    Case("unknown calendar", team('calendar = "apac"'), expect=("teams.0.calendar", "[calendars.apac]")),
    Case("reserved team key", team("", key="other"), expect=("teams.0.key", "reserved", "pick another key")),
    Case("duplicate team key", lambda w: w.good + '[[teams]]\nkey = "pay"\n\n[[teams]]\nkey = "pay"\n',
         expect=("teams.1.key", "duplicate team key 'pay'", "its own key")),
    Case("team without a key", lambda w: w.good + '[[teams]]\nname = "Payments"\n', expect=("teams.0.key", "missing")),
    Case("member without a source prefix", team('members = [{ person = "ana" }]'),
         expect=("teams.0.members.0.person", "'github:<login>'")),
    Case("duplicate team member", team('members = [{ person = "jira:ana" }, { person = "jira:ana" }]'),
         expect=("teams.0.members.1.person", "already a member of team 'pay'", "do not overlap")),
    Case("a member twice under two ids",
         lambda w: team('members = [{ person = "jira:ana" }, { person = "github:ana-gh" }]')(w)
         + '\n[[identities]]\njira = "ana"\ngithub = "ana-gh"\n',
         expect=("teams.0.members.1.person", "the same person")),
    Case("valid_to before valid_from",
         team('members = [{ person = "jira:ana", valid_from = 2024-06-01, valid_to = 2024-01-01 }]'),
         expect=("teams.0.members.0.valid_to", "must be after valid_from", "swap them")),
    Case("a login in two identities", lambda w: w.good + '[[identities]]\njira = "ana"\ngithub = "ana-gh"\n\n'
                                                        '[[identities]]\njira = "bob"\ngithub = "ana-gh"\n',
         expect=("identities.1.github", "already in identities.0", "merge")),
    Case("invalid cron", lambda w: w.good + '[schedule]\ncron = "every night at 2"\n',
         expect=("schedule.cron", "five fields", "'0 2 * * *'")),
    Case("schedule time zone", lambda w: w.good + '[schedule]\ntimezone = "CET+1"\n',
         expect=("schedule.timezone", "IANA name")),
    Case("no group size", lambda w: w.good + "[privacy]\nmin_group_size = 0\n",
         expect=("privacy.min_group_size", "greater than or equal to 1")),
    Case("missing CA file", lambda w: w.good.replace("[sources.github]\n", '[sources.github]\nca_bundle = "/no/ca.pem"\n'),
         expect=("sources.github.ca_bundle", "PEM file")),
    Case("pseudonyms without a key", lambda w: w.good + "[privacy]\npseudonymize = true\n",
         env=lambda w: {"FLOWLENS_PSEUDONYM_KEY": None}, expect=("FLOWLENS_PSEUDONYM_KEY", "16 or more characters")),
    # the environment
    Case("FLOWLENS_AS_OF=yesterday", env=lambda w: {"FLOWLENS_AS_OF": "yesterday"},
         expect=("FLOWLENS_AS_OF", "'yesterday'", "2024-06-30T00:00:00Z")),
    Case("FLOWLENS_DUCKDB_THREADS=zero", env=lambda w: {"FLOWLENS_DUCKDB_THREADS": "zero"},
         expect=("FLOWLENS_DUCKDB_THREADS", "'zero'", "1 or more")),
    Case("FLOWLENS_DUCKDB_THREADS=0", env=lambda w: {"FLOWLENS_DUCKDB_THREADS": "0"},
         expect=("FLOWLENS_DUCKDB_THREADS", "1 or more")),
    Case("FLOWLENS_DUCKDB_MEMORY_LIMIT=lots", env=lambda w: {"FLOWLENS_DUCKDB_MEMORY_LIMIT": "lots"},
         expect=("FLOWLENS_DUCKDB_MEMORY_LIMIT", "'lots'", "4GB")),
    Case("FLOWLENS_DUCKDB_TEMP_DIRECTORY a file", env=lambda w: {"FLOWLENS_DUCKDB_TEMP_DIRECTORY": str(w.tmp / "afile")},
         expect=("FLOWLENS_DUCKDB_TEMP_DIRECTORY", "is a file")),
    Case("FLOWLENS_HOME a file", env=lambda w: {"FLOWLENS_HOME": str(w.tmp / "afile")},
         expect=("FLOWLENS_HOME", "is a file, not a folder")),
    Case("FLOWLENS_HOME under a file", env=lambda w: {"FLOWLENS_HOME": str(w.tmp / "afile" / "home")},
         expect=("FLOWLENS_HOME", "cannot be created")),
    Case("REQUESTS_CA_BUNDLE missing", env=lambda w: {"REQUESTS_CA_BUNDLE": str(w.tmp / "no-ca.pem")},
         expect=("REQUESTS_CA_BUNDLE", "PEM file")),
    Case("JIRA_URL without a scheme", env=lambda w: {"JIRA_URL": "acme.atlassian.net"},
         expect=("JIRA_URL", "not a URL", "https://your-domain.atlassian.net")),
    Case("JIRA_URL an API address", env=lambda w: {"JIRA_URL": w.url + "/rest/api/3"},
         expect=("JIRA_URL", "base address")),
    Case("missing JIRA_API_TOKEN", env=lambda w: {"JIRA_API_TOKEN": None},
         expect=("JIRA_API_TOKEN is not set", "api-tokens")),
    Case("missing JIRA_EMAIL", env=lambda w: {"JIRA_EMAIL": None}, expect=("JIRA_EMAIL is not set",)),
    Case("Jira credentials without JIRA_URL", env=lambda w: {"JIRA_URL": None}, expect=("JIRA_URL is not set",)),
    Case("Jira projects without JIRA_URL", env=lambda w: {"JIRA_URL": None, "JIRA_EMAIL": None, "JIRA_API_TOKEN": None},
         expect=("JIRA_URL is not set", "sources.jira.projects", "sources.jira.enabled = false")),
    Case("GITHUB_API_URL without /api/v3", env=lambda w: {"GITHUB_API_URL": w.url},
         expect=("GITHUB_API_URL", "lacks /api/v3", "/api/v3")),
    Case("GITHUB_API_URL the web site", env=lambda w: {"GITHUB_API_URL": "https://github.com"},
         expect=("GITHUB_API_URL", "https://api.github.com")),
    Case("GitHub repositories without GITHUB_TOKEN", env=lambda w: {"GITHUB_TOKEN": None},
         expect=("GITHUB_TOKEN is not set", "sources.github.repositories")),
    Case("no source at all", lambda w: "", env=lambda w: {k: None for k in ("JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN",
                                                                               "GITHUB_TOKEN")},
         expect=("no source to extract", "JIRA_URL", "GITHUB_TOKEN")),
    # what only the server can tell
    Case("unknown project", lambda w: w.good.replace(f'"{w.project}"', f'"{w.project}", "NOPE"'), server=True,
         expect=("sources.jira.projects", "'NOPE'")),
    Case("invalid JQL", lambda w: w.good.replace("[sources.github]", 'jql = "status = = Done"\n\n[sources.github]'),
         server=True, expect=("sources.jira.jql", "refused the JQL")),
    Case("unknown repository", lambda w: w.good.replace(f'"{w.repo}"', f'"{w.repo}", "acme/no-such-repo"'),
         server=True, expect=("acme/no-such-repo", "sources.github.repositories")),
    Case("include filter matching nothing",
         lambda w: w.good.replace("[sources.github]\n", '[sources.github]\ninclude = ["payments-*"]\n'),
         server=True, expect=("sources.github.include", "'payments-*' matches none", "'org/repo'")),
    Case("a wrong Jira token", env=lambda w: {"JIRA_API_TOKEN": "not-the-token"}, server=True,
         expect=("Jira:", "401", "JIRA_API_TOKEN")),
    Case("a wrong GitHub token", env=lambda w: {"GITHUB_TOKEN": "ghp_not_the_token"}, server=True,
         expect=("GitHub:", "401", "GITHUB_TOKEN")),
]


def pick(store) -> tuple[str, str]:
    """The good configuration's project and repository."""
    return min(store.jira_projects), min(r.full_name for r in store.github_repos if not r.archived)


@pytest.fixture(scope="module")
def sandbox():
    store = generate("small", 1)
    with Sandbox(store) as sb:
        yield sb, *pick(store)


def snapshot(home: Path) -> dict[str, object]:
    """Every file of a home but Dagster's own storage and the run lock, by content; the warehouse by its rows."""
    files: dict[str, object] = {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.rglob("*"))
        if p.is_file() and "dagster" not in p.relative_to(home).parts and not p.name.startswith(("warehouse.duckdb", "run.lock",
                                                                                                ".flowlens"))}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        files["warehouse rows"] = con.execute("select * from last_night").fetchall()
    return files


def call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def prepare(case: Case, sb: Sandbox, project: str, repo: str, tmp: Path, monkeypatch) -> tuple[World, str, Path]:
    """The case's world: a home that already holds data (a previous night's), the file, the environment."""
    w = World(sb.url, tmp, project, repo)
    (tmp / "afile").write_text("not a folder\n")
    home = tmp / "home"
    (home / "landing" / "github" / repo.replace("/", "%2F")).mkdir(parents=True)
    (home / "landing" / "github" / repo.replace("/", "%2F") / "page.json").write_text('{"from": "last night"}')
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("create table last_night as select 'loaded last night' as what")
    for name in [k for k in os.environ if k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_"))]:
        monkeypatch.delenv(name)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    env: dict[str, str | None] = {**sb.env(), "FLOWLENS_HOME": str(home), "FLOWLENS_PSEUDONYM_KEY": PSEUDONYM_KEY,
                                   **case.env(w)}
    monkeypatch.setenv("FLOWLENS_CONFIG", "")  # run_all sets it (and maybe FLOWLENS_HOME): restored afterwards
    for name, value in env.items():
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    if case.config_path:
        config = case.config_path(w)
    else:
        config = str(tmp / "flowlens.toml")
        body = case.toml(w)
        Path(config).write_bytes(body if isinstance(body, bytes) else body.encode())
    return w, config, home


def the_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("flowlens: "), err
    return lines[-1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_configuration_is_one_line_and_exit_2_from_check_and_run(case: Case, sandbox, tmp_path,
                                                                          monkeypatch) -> None:
    sb, project, repo = sandbox
    _, config, home = prepare(case, sb, project, repo, tmp_path, monkeypatch)
    before = snapshot(home)

    code, _, err = call(["check", "--config", config])
    line = the_line(err)
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err  # check prints problems to stderr only
    assert code == 2, err
    for words in case.expect:
        assert words in line, line

    sb.app.reset_stats()
    code, _, err = call(["run", "--config", config])
    assert code == 2, err
    assert the_line(err) == line  # the same words from run as from check
    requests = sb.app.stats.requests
    if case.server:  # it asked the server, but extracted nothing and loaded nothing
        assert requests.get("jira.search_jql", 0) <= 1, requests  # the scope probe: one issue
        assert not set(requests) & EXTRACT_ROUTES, requests
        progress = [ln for ln in err.splitlines() if ln.strip()][:-1]
        assert all(not ln.strip().startswith(("extracting", "loading")) for ln in progress), err
    else:  # not one request, not one line of progress: it stopped before the run began
        assert sum(requests.values()) == 0, requests
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert snapshot(home) == before  # last night's data is still there, untouched


def test_the_table_covers_forty_kinds() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 40


def test_the_command_line_exits_2_without_a_traceback(tmp_path) -> None:
    """The real entry point, for one file mistake and one environment mistake."""
    bad = tmp_path / "flowlens.toml"
    bad.write_bytes('[[teams]]\nkey = "pay"\nname = "Équipe"\n'.encode("latin-1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_"))}
    for argv, extra in ((["check", "--config", str(bad)], {}), (["run", "--config", str(bad)], {}),
                        (["run"], {"FLOWLENS_HOME": str(bad), "GITHUB_TOKEN": "x"})):
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *argv], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env | {"PYTHONPATH": str(ROOT)} | extra, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


if __name__ == "__main__":  # the table for the note: case | the line | exit codes
    import tempfile

    from _pytest.monkeypatch import MonkeyPatch

    store = generate("small", 1)
    with Sandbox(store) as sb:
        for case in CASES:
            with tempfile.TemporaryDirectory() as d, MonkeyPatch.context() as mp:
                _, config, _ = prepare(case, sb, *pick(store), Path(d), mp)
                c1, _, e1 = call(["check", "--config", config])
                c2, _, e2 = call(["run", "--config", config])
                print(f"| {case.id} | `{e1.strip().splitlines()[-1]}` | {c1} | {c2} |")
