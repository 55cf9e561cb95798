"""Dagster resources: Jira, GitHub and the warehouse, configured from the environment and flowlens.toml.

Credentials are read from the environment when a resource is used, never stored in resource config, so
they never reach the run config, the event log or the UI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from pipelines.config import Config, load_config


@dataclass(frozen=True)
class Home:
    """Where a run's files live (FLOWLENS_HOME, default ./var)."""

    root: Path

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> Home:
        return cls(Path(home or os.environ.get("FLOWLENS_HOME") or "var").absolute())

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published" / "flowlens.duckdb"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


class SourceSkipped(Exception):
    """A source is not configured (variables unset, or disabled): the message says which and how to enable."""


class _Flowlens(dg.ConfigurableResource):
    config_path: str | None = None  # flowlens.toml; None: FLOWLENS_CONFIG, ./flowlens.toml, else defaults
    home: str | None = None  # FLOWLENS_HOME; None: the variable, else ./var
    _lock: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Every step holds the home's run lock (pipelines/lock.py) while it runs: shared between the steps of
        runs Dagster launched, refused at once (one line naming the holder) while `flowlens run` or `flowlens
        demo` holds it; in their own process the lock they hold is simply taken again."""
        from pipelines import lock

        self._lock = lock.acquire(self.paths().root, shared=True)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def config(self) -> Config:
        return load_config(self.config_path)

    def paths(self) -> Home:
        return Home.from_env(self.home)


def _settings(cls: type, environ: Mapping[str, str], ca_bundle: str | None = None, **overrides: Any) -> Any:
    """`cls.from_env` with only the overrides the settings class knows (and not None); `ca_bundle` goes to
    its HTTP settings."""
    names = {f.name for f in dataclasses.fields(cls)}
    settings = cls.from_env(environ, **{k: v for k, v in overrides.items() if k in names and v is not None})
    if ca_bundle and hasattr(settings, "http"):
        settings.http = dataclasses.replace(settings.http, ca_bundle=ca_bundle)
    return settings


class JiraResource(_Flowlens):
    """Jira from JIRA_URL + JIRA_EMAIL/JIRA_API_TOKEN or JIRA_PAT; projects and JQL from flowlens.toml."""

    def settings(self, cfg: Config | None = None, environ: Mapping[str, str] | None = None) -> Any:
        from connectors.http import ConnectorError
        from connectors.jira import JiraSettings

        src = (cfg or self.config()).sources.jira
        if not src.enabled:
            raise SourceSkipped("Jira: disabled in flowlens.toml (sources.jira.enabled = false)")
        try:
            return _settings(JiraSettings, os.environ if environ is None else environ,
                             projects=list(src.projects) or None, jql=src.jql, overlap_minutes=src.overlap_minutes,
                             ca_bundle=src.ca_bundle, remote_links=src.remote_links)
        except ConnectorError as e:
            raise SourceSkipped(f"Jira skipped: {e}") from None

    def connect(self, cfg: Config | None = None) -> Any:
        from connectors import jira

        return jira.connect(self.settings(cfg))

    def partitions(self, source: Any, cfg: Config) -> list[str]:
        """The configured project keys, else every project the credentials can see."""
        return sorted(set(cfg.sources.jira.projects)) or sorted(set(source.discover_projects()))


class GitHubResource(_Flowlens):
    """GitHub from GITHUB_TOKEN (+ GITHUB_API_URL); organisations and repositories from flowlens.toml."""

    def settings(self, cfg: Config | None = None, environ: Mapping[str, str] | None = None) -> Any:
        from connectors.github import GitHubSettings
        from connectors.http import ConnectorError

        cfg = cfg or self.config()
        src = cfg.sources.github
        env = os.environ if environ is None else environ
        if not src.enabled:
            raise SourceSkipped("GitHub: disabled in flowlens.toml (sources.github.enabled = false)")
        if not env.get("GITHUB_TOKEN"):
            raise SourceSkipped("GitHub skipped: GITHUB_TOKEN is not set (set it to a token that can read the "
                                "repositories; GITHUB_API_URL for GitHub Enterprise)")
        try:
            return _settings(GitHubSettings, env, api=src.api, bots=list(cfg.bots.names) or None,
                             organizations=list(src.organizations) or None,
                             repositories=list(src.repositories) or None, include=list(src.include) or None,
                             exclude=list(src.exclude) or None, overlap_minutes=src.overlap_minutes,
                             ca_bundle=src.ca_bundle)
        except ConnectorError as e:
            raise SourceSkipped(f"GitHub skipped: {e}") from None

    def connect(self, cfg: Config | None = None) -> Any:
        from connectors import github

        return github.connect(self.settings(cfg))

    def partitions(self, source: Any, cfg: Config) -> list[str]:
        """Configured and discovered repositories ("org/repo"), filtered by include/exclude (the connector's)."""
        return sorted(set(source.discover_repositories()))


class WarehouseResource(_Flowlens):
    """The working warehouse file. Its connection always closes, even when the asset fails (docs/design.md)."""

    @contextmanager
    def connection(self, read_only: bool = False) -> Iterator[Any]:
        import duckdb

        path = self.paths().warehouse
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only)
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


def default_resources(config_path: str | None = None, home: str | None = None) -> dict[str, Any]:
    """The one place resources are built: every asset gets `jira`, `github` and `warehouse`."""
    return {"jira": JiraResource(config_path=config_path, home=home),
            "github": GitHubResource(config_path=config_path, home=home),
            "warehouse": WarehouseResource(config_path=config_path, home=home)}
