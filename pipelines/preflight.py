"""A broken configuration, found before a run calls an API: flowlens.toml, the environment, the folders.

`flowlens check`, `flowlens run` and the nightly `sources` asset call the same checks, so each mistake reads as
the same one line naming the key or the variable and what to do; the commands exit with EXIT_CONFIG (2).
`preflight` needs no network. `scope` asks the servers what only they know (an unknown project or
repository, a JQL they refuse, an include pattern matching nothing) before anything is extracted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipelines.config import Config, ConfigError, load_config


def preflight(config_path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """flowlens.toml and the environment, without network: the Config, or ConfigError (one line)."""
    env = os.environ if environ is None else environ
    cfg = load_config(config_path)
    check_environment(cfg, env)
    return cfg


def check_environment(cfg: Config, env: Mapping[str, str]) -> None:
    """Every variable a run reads, in the order a user would fix them."""
    _home(env)
    _as_of(env.get("FLOWLENS_AS_OF", ""))
    _duckdb(env)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = env.get(name)
        if value and not Path(value).expanduser().is_file():
            raise ConfigError(f"{name}: no such file {value!r}: point it at a PEM file of the CAs to trust, "
                              "or unset it (sources.*.ca_bundle in flowlens.toml sets one per site)")
    from pipelines.publish import PublishError, pseudonym_key

    try:
        pseudonym_key(cfg, env)
    except PublishError as e:
        raise ConfigError(str(e)) from None
    jira, github = _jira(cfg, env), _github(cfg, env)
    if not jira and not github:
        raise ConfigError("no source to extract: set JIRA_URL with JIRA_EMAIL + JIRA_API_TOKEN (Cloud) or JIRA_PAT "
                          "(Data Center), and/or GITHUB_TOKEN" + _disabled(cfg))


def _disabled(cfg: Config) -> str:
    off = [n for n, s in (("jira", cfg.sources.jira), ("github", cfg.sources.github)) if not s.enabled]
    return "".join(f" (sources.{n}.enabled = false in {cfg.path})" for n in off)


def _home(env: Mapping[str, str]) -> None:
    value = env.get("FLOWLENS_HOME") or ""
    name = "FLOWLENS_HOME" if value else "FLOWLENS_HOME (unset: ./var)"
    home = Path(value or "var").expanduser().absolute()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"{name}: {home} is a file, not a folder: point FLOWLENS_HOME at a folder (it is created "
                          "if missing)")
    existing = next(p for p in (home, *home.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{name}: {existing} is a file, so {home} cannot be created: point FLOWLENS_HOME at a "
                          "folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}: {existing} is not writable: point FLOWLENS_HOME at a folder you can write to")


def _as_of(value: str) -> None:
    if not value:
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"FLOWLENS_AS_OF: {value!r} is not an ISO 8601 instant: write e.g. 2024-06-30T00:00:00Z "
                          "(UTC without an offset), or unset it to measure up to now") from None


def _duckdb(env: Mapping[str, str]) -> None:
    threads = env.get("FLOWLENS_DUCKDB_THREADS", "")
    if threads and (not threads.strip().isdigit() or int(threads) < 1):
        raise ConfigError(f"FLOWLENS_DUCKDB_THREADS: {threads!r} is not a whole number of threads: set 1 or more "
                          "(e.g. 4), or unset it (the cores + 1)")
    limit = env.get("FLOWLENS_DUCKDB_MEMORY_LIMIT", "")
    if limit:
        import duckdb

        try:
            duckdb.connect(config={"memory_limit": limit}).close()
        except duckdb.Error:
            raise ConfigError(f"FLOWLENS_DUCKDB_MEMORY_LIMIT: {limit!r} is not a memory size: write e.g. 4GB or "
                              "500MB, or unset it (DuckDB's default: 80% of the machine's memory)") from None
    temp = env.get("FLOWLENS_DUCKDB_TEMP_DIRECTORY", "")
    if temp and Path(temp).exists() and not Path(temp).is_dir():
        raise ConfigError(f"FLOWLENS_DUCKDB_TEMP_DIRECTORY: {temp} is a file, not a folder: point it at a folder "
                          "for DuckDB's spill files, or unset it (next to the warehouse)")


def _url(name: str, value: str, example: str) -> Any:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: {value!r} is not a URL: write the address with its scheme, e.g. {example}")
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} has an invalid port: write e.g. {example}") from None
    return parts


def _jira(cfg: Config, env: Mapping[str, str]) -> bool:
    """True when Jira is to be extracted (and its variables are complete); False when it is skipped."""
    src = cfg.sources.jira
    url, email, token, pat = (env.get(k, "").strip() for k in ("JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PAT"))
    if not src.enabled:
        return False
    if not url:
        given = [k for k, v in (("JIRA_EMAIL", email), ("JIRA_API_TOKEN", token), ("JIRA_PAT", pat)) if v]
        if given:
            raise ConfigError(f"JIRA_URL is not set ({' and '.join(given)} {'is' if len(given) == 1 else 'are'}): "
                              "set it to your Jira site, e.g. https://your-domain.atlassian.net")
        if src.projects or src.jql:
            key = "projects" if src.projects else "jql"
            raise ConfigError(f"JIRA_URL is not set, but sources.jira.{key} in {cfg.path} asks for Jira: set JIRA_URL "
                              "and its credentials, or sources.jira.enabled = false")
        return False
    parts = _url("JIRA_URL", url, "https://your-domain.atlassian.net")
    if "/rest/" in parts.path + "/" or "/browse" in parts.path or parts.query:
        base = f"{parts.scheme}://{parts.netloc}{parts.path.split('/rest')[0].split('/browse')[0]}"
        raise ConfigError(f"JIRA_URL: {url!r} is a page or API address: set the site's base address, {base}")
    if pat:
        return True
    if email and not token:
        raise ConfigError("JIRA_API_TOKEN is not set (JIRA_EMAIL is): create an API token at "
                          "https://id.atlassian.com/manage-profile/security/api-tokens and export JIRA_API_TOKEN "
                          "(Data Center: JIRA_PAT)")
    if token and not email:
        raise ConfigError("JIRA_EMAIL is not set (JIRA_API_TOKEN is): export the email address of the token's "
                          "Atlassian account")
    if not email:
        raise ConfigError("no Jira credentials: JIRA_URL is set but neither JIRA_EMAIL + JIRA_API_TOKEN (Cloud) nor "
                          "JIRA_PAT (Data Center) is: export them, or unset JIRA_URL to skip Jira")
    return True


def _github(cfg: Config, env: Mapping[str, str]) -> bool:
    """True when GitHub is to be extracted; False when it is skipped."""
    src = cfg.sources.github
    token, api_url = env.get("GITHUB_TOKEN", "").strip(), env.get("GITHUB_API_URL", "").strip()
    if not src.enabled:
        return False
    if api_url:
        parts = _url("GITHUB_API_URL", api_url, "https://api.github.com or https://HOST/api/v3")
        host, path = parts.hostname.lower(), parts.path.rstrip("/")
        if host in ("github.com", "www.github.com"):
            raise ConfigError(f"GITHUB_API_URL: {api_url!r} is GitHub's web site: set https://api.github.com, or "
                              "unset GITHUB_API_URL")
        cloud = host == "api.github.com" or (host.startswith("api.") and host.endswith(".ghe.com"))
        if cloud and path:
            raise ConfigError(f"GITHUB_API_URL: {api_url!r}: the API of {host} is at its root: set "
                              f"{parts.scheme}://{parts.netloc}")
        if not cloud and not path.endswith("/api/v3"):
            base = path.removesuffix("/api/graphql").removesuffix("/api")
            raise ConfigError(f"GITHUB_API_URL: {api_url!r} lacks /api/v3 (GitHub Enterprise Server's REST API is "
                              f"there): set GITHUB_API_URL={parts.scheme}://{parts.netloc}{base}/api/v3")
    if not token:
        if src.organizations or src.repositories:
            key = "organizations" if src.organizations else "repositories"
            raise ConfigError(f"GITHUB_TOKEN is not set, but sources.github.{key} in {cfg.path} asks for GitHub: "
                              "export GITHUB_TOKEN, or set sources.github.enabled = false")
        return False
    return True


def scope(name: str, res: Any, cfg: Config) -> tuple[Any, list[str]]:
    """Connect one source ("jira", "github"): (the source, its partitions), proving the configured scope exists on the
    server: refused credentials, an unknown project, organisation or repository, a refused JQL or an include
    pattern that matches nothing is a ConfigError. Raises SourceSkipped when the source is not configured,
    ConnectorError when it cannot be reached."""
    from connectors.http import AuthError, NotFoundError

    title = "Jira" if name == "jira" else "GitHub"
    try:
        source = res.connect(cfg)
        keys = res.partitions(source, cfg)
    except AuthError as e:
        raise ConfigError(f"{title}: {e}") from None
    except NotFoundError as e:
        if "sources.github" in str(e):
            raise ConfigError(str(e) if str(e).startswith(title) else f"{title}: {e}") from None
        raise
    if name == "github":
        unmatched = [p for p in cfg.sources.github.include if not _matches_any(p, keys)]
        if unmatched:
            raise ConfigError(f"sources.github.include: {unmatched[0]!r} matches none of the {len(keys)} repositories "
                              f"found{_examples(keys)}: patterns are shell patterns over 'org/repo', e.g. "
                              "'acme/pay-*'")
    elif cfg.sources.jira.projects or cfg.sources.jira.jql:
        # configured keys must all exist; a JQL alone is proven on one discovered project (it is the same JQL)
        _jira_scope(source, keys if cfg.sources.jira.projects else keys[:1])
    return source, keys


def _jira_scope(source: Any, keys: list[str]) -> None:
    """One search of one issue over the configured projects with the configured JQL: what the extract asks."""
    from connectors.jira import JqlError, UnknownProjectError

    try:
        source.check_scope(keys)
    except UnknownProjectError as e:
        raise ConfigError(f"sources.jira.projects: {e}") from None
    except JqlError as e:
        raise ConfigError(f"sources.jira.jql: {e}") from None


def _matches_any(pattern: str, names: list[str]) -> bool:
    from connectors.github import matches

    return any(matches(n, [pattern], []) for n in names)


def _examples(names: list[str]) -> str:
    return f" ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" if names else ""
