"""flowlens.toml: the example is valid; every kind of mistake is one line naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import DEFAULT_PATTERNS, Config, ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "flowlens.example.toml"


def test_the_example_file_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.sources.jira.projects == ["PAY", "WEB"]
    assert cfg.status_mapping.projects["WEB"]["Em Revisão"] == "approval"
    assert cfg.teams[0].members[1].valid_to is not None
    assert cfg.calendar_table()["emea"].timezone == "Europe/Berlin"
    assert set(cfg.calendar_table()) == {"default", "emea"}
    assert cfg.status_mapping.all_patterns()[-len(DEFAULT_PATTERNS):] == DEFAULT_PATTERNS
    assert cfg.path == str(EXAMPLE)


def test_no_file_gives_the_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWLENS_CONFIG", raising=False)
    assert load_config(None) == Config()
    (tmp_path / "f.toml").write_text("[privacy]\nmin_group_size = 5\n")
    monkeypatch.setenv("FLOWLENS_CONFIG", str(tmp_path / "f.toml"))
    assert load_config(None).privacy.min_group_size == 5


@pytest.mark.parametrize(("body", "key", "words"), [
    ("[status_mapping]\nbogus = 1\n", "status_mapping.bogus", "unknown key"),
    ("[sources.jira]\noverlap_minutes = \"ten\"\n", "sources.jira.overlap_minutes", "integer"),
    ("[status_mapping]\npatterns = [{ pattern = \"(review\", state = \"approval\" }]\n",
     "status_mapping.patterns.0.pattern", "regular expression"),
    ("[calendars.x]\ntimezone = \"Mars/Olympus\"\n", "calendars.x.timezone", "time zone"),
    ("[schedule]\ntimezone = \"Nowhere\"\n", "schedule.timezone", "time zone"),
    ("[status_mapping.projects.WEB]\n\"Em Revisão\" = \"reviewing\"\n", "status_mapping.projects.WEB.Em Revisão",
     "'approval'"),
    ("[[teams]]\nkey = \"pay\"\ncalendar = \"apac\"\n", "teams.0.calendar", "unknown calendar"),
    ("[[teams]]\nkey = \"pay\"\nmembers = [{ person = \"ana\" }]\n", "teams.0.members.0.person", "jira:"),
    ("[calendars.x]\nhours = [\"17:00\", \"09:00\"]\n", "calendars.x", "start must be before"),
    ("[calendars.x]\nworkdays = [\"monday\"]\n", "calendars.x.workdays.0", "'mon'"),
    ("[[teams]]\nkey = \"other\"\n", "teams.0.key", "reserved"),
    ("[sources.github]\nca_bundle = \"/no/such/ca.pem\"\n", "sources.github.ca_bundle", "no such file"),
])
def test_each_mistake_is_one_line_naming_key_and_file(tmp_path: Path, body: str, key: str, words: str) -> None:
    f = tmp_path / "flowlens.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}: {key}: "), msg
    assert words in msg, msg


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sources\n")
    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load_config(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_a_ca_bundle_reaches_each_sources_http_client(tmp_path: Path) -> None:
    from pipelines.resources import GitHubResource, JiraResource

    pem = tmp_path / "corp-ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    f = tmp_path / "flowlens.toml"
    f.write_text(f'[sources.github]\nca_bundle = "{pem}"\n[sources.jira]\nca_bundle = "{pem}"\n')
    env = {"GITHUB_TOKEN": "t", "JIRA_URL": "https://x.atlassian.net", "JIRA_EMAIL": "a@b", "JIRA_API_TOKEN": "t"}
    assert GitHubResource(config_path=str(f)).settings(environ=env).http.ca_bundle == str(pem)
    assert JiraResource(config_path=str(f)).settings(environ=env).http.ca_bundle == str(pem)
    assert GitHubResource().settings(Config(), environ=env).http.ca_bundle is None


def test_remote_links_can_be_turned_off_for_a_big_site(tmp_path: Path) -> None:
    from pipelines.resources import JiraResource

    f = tmp_path / "flowlens.toml"
    f.write_text("[sources.jira]\nremote_links = false\n")
    env = {"JIRA_URL": "https://x.atlassian.net", "JIRA_EMAIL": "a@b", "JIRA_API_TOKEN": "t"}
    assert JiraResource(config_path=str(f)).settings(environ=env).remote_links is False
    assert JiraResource().settings(Config(), environ=env).remote_links is True  # on unless turned off
