"""Extract assets: Jira site streams, one partition per Jira project and per GitHub repository.

Extracts only write the landing area (never the warehouse), so partitions run in parallel. A run over a
range of partitions (single-run backfill) extracts them in one step, with the connectors' multi-partition
methods: one Jira search over all the projects, GitHub searches that cover many repositories.
"""


import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from connectors.http import ConnectorError
from pipelines import full_refresh, progress
from pipelines.resources import GitHubResource, JiraResource, SourceSkipped, WarehouseResource

JIRA_PROJECTS = dg.DynamicPartitionsDefinition(name="jira_projects")
GITHUB_REPOSITORIES = dg.DynamicPartitionsDefinition(name="github_repositories")
EXTRACT_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
PARALLEL_PARTITIONS = 4


def _extract_asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset` whose partitions run as one step (a single-run backfill policy: beta in dagster 1.13, its
    warning silenced here and nowhere else)."""
    def wrap(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.asset(backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)(fn)
    return wrap
FOUND_KEY = "found"  # the `sources` materialization's metadata: {"jira": [keys], "github": [keys]}

# Once everything upstream is done and nothing upstream is in progress; never past a failed blocking check.
# The nightly schedule materializes `sources`; this condition carries the rest (schedules.py).
AFTER_UPSTREAM = (
    dg.AutomationCondition.any_deps_updated().since(
        dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated())
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    # Not all_deps_blocking_checks_passed(): it is false for deps that have no checks at all.
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True))
).with_label("after upstream, checks passed")


def read_cursors_retrying(path: Path, timeout_s: float = 120.0) -> dict[tuple[str, str], dict]:
    """Stored cursors; waits while another process holds the warehouse lock (a load in progress)."""
    import duckdb

    from pipelines import warehouse

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return warehouse.read_cursors(path)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def _fails_as_connector_says() -> Iterator[None]:
    """A ConnectorError ends the step as a one-line Failure that the retry policy may retry only when the
    connector says it may pass (a transient fault that outlived the client's retries); a damaged answer, a 4xx or
    a user mistake fails at once. (An exception Dagster sees raw is always retried by the policy.)"""
    try:
        yield
    except ConnectorError as e:
        raise dg.Failure(description=str(e), allow_retries=e.retryable) from None
    except SourceSkipped as e:  # a partition or stream asked for a source that is not configured
        raise dg.Failure(description=str(e), allow_retries=False) from None


def _run_counter(landing: Path, source: str, partition: str) -> int:
    """How many extracts of this partition have started (for the periodic reconcile); counts this one."""
    from landing_format import partition_dir

    f = landing / source / partition_dir(partition) / "_runs.json"
    n = (json.loads(f.read_text()).get("runs", 0) if f.exists() else 0) + 1
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"runs": n}))
    return n


def _done_this_run(context: dg.AssetExecutionContext, landing: Path, source: str, partition: str) -> bool:
    """On a retry: this partition already landed a complete extract since the run started."""
    from landing_format import MANIFEST, partition_dir

    if context.retry_number == 0:
        return False
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record and record.start_time else None
    if started is None:
        return False
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = landing / source / partition_dir(partition)
    return any(d.name >= stamp and (d / MANIFEST).exists() for d in folder.glob("*/") if d.is_dir())


def _extract_many(context: dg.AssetExecutionContext, source_name: str, keys: list[str],
                  many: Callable[[list[str], Callable[[dict], None]], dict[str, Any]],
                  source: Any = None) -> dg.MaterializeResult:
    """Extract every partition key in one multi-partition connector call (searches over many partitions, one manifest
    per partition); fail at the end naming those that failed. The requests no partition counted are told apart."""
    counted = [0]  # the requests the partitions' `done` events carry
    try:
        with _fails_as_connector_says():
            return _extract_partitions(context, source_name, keys, many, counted)
    finally:
        _tell_requests(context, source_name, source, "extract", attributed=counted[0])


def _extract_partitions(context: dg.AssetExecutionContext, source_name: str, keys: list[str],
                        many: Callable[[list[str], Callable[[dict], None]], dict[str, Any]],
                        counted: list[int]) -> dg.MaterializeResult:
    records: dict[str, int] = {}
    pages: dict[str, int] = {}
    requests = 0
    failures: list[str] = []

    def report(event: dict) -> None:
        key = event.get("project") or event.get("repository") or "?"
        progress.emit(context, {"source": source_name, "partition": key, **event})

    for key in keys:
        progress.emit(context, {"source": source_name, "partition": key, "event": "start"})
    results = many(keys, report) if keys else {}
    for key in keys:
        result = results.get(key)
        if result is None or isinstance(result, Exception):
            result = result or RuntimeError("not extracted")
            progress.emit(context, {"source": source_name, "partition": key, "event": "failed", "error": str(result)})
            failures.append(f"{key}: {str(result).splitlines()[0] if str(result) else type(result).__name__}")
            context.log.error(f"{source_name} {key}: extract failed: {result}")
            continue
        progress.emit(context, {"source": source_name, "partition": key, "event": "done", "records": result.records,
                       "pages": result.pages, "requests": result.requests})
        requests += result.requests
        counted[0] = requests
        for stream, n in result.records.items():
            records[stream] = records.get(stream, 0) + n
        for stream, n in result.pages.items():
            pages[stream] = pages.get(stream, 0) + n
        context.log.info(f"{source_name} {key}: {sum(result.records.values())} records in "
                         f"{sum(result.pages.values())} pages, {result.requests} requests (a search over many split evenly)")
    if failures:
        # Retry the step only when some failure may pass (a transient fault that outlived the client's retries);
        # a 4xx, a damaged answer, a user mistake or a partition the connector left out fails at once, in one line.
        again = any(isinstance(results.get(k), ConnectorError) and results[k].retryable for k in keys)
        raise dg.Failure(description=f"{len(failures)} of {len(keys)} {source_name} partitions failed: "
                         + "; ".join(failures[:5]), allow_retries=again)
    return dg.MaterializeResult(metadata={
        "partitions": len(keys), "api_requests": requests,
        **{f"records_{s}": n for s, n in sorted(records.items())},
        **{f"pages_{s}": n for s, n in sorted(pages.items())},
    })


def _tell_requests(context: dg.AssetExecutionContext, source_name: str, source: Any, what: str,
                   attributed: int = 0) -> None:
    """The requests this step's client sent that no partition's `done` counted (connecting, discovery, the site
    streams, a failed partition): `flowlens run`'s totals are then every request the step sent, exactly."""
    client = getattr(source, "client", None)
    extra = (client.log.total if client is not None else 0) - attributed
    if extra:
        progress.emit(context, {"source": source_name, "partition": f"_{what}", "event": "requests",
                                "what": what, "requests": extra})


def _keys(context: dg.AssetExecutionContext) -> list[str]:
    return list(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else []


@_extract_asset(group_name="jira", pool="jira_api", retry_policy=EXTRACT_RETRY, kinds={"jira"}, deps=["sources"],
          description="Jira site-wide streams: statuses, fields, the user, link types.")
def jira_site(context: dg.AssetExecutionContext, jira: JiraResource) -> dg.MaterializeResult:
    try:
        source = jira.connect()
    except SourceSkipped as e:
        context.log.warning(str(e))
        return dg.MaterializeResult(metadata={"skipped": str(e)})
    except ConnectorError as e:
        raise dg.Failure(description=str(e), allow_retries=e.retryable) from None
    _tell_gaps(context, "jira", source)
    try:
        with _fails_as_connector_says():
            result = source.extract_site(jira.paths().landing)
    finally:
        _tell_requests(context, "jira", source, "site")
    return dg.MaterializeResult(metadata={"api_requests": result.requests,
                                          **{f"records_{s}": n for s, n in sorted(result.records.items())},
                                          **({"gaps": dg.MetadataValue.json(result.gaps)} if result.gaps else {})})


def _tell_gaps(context: dg.AssetExecutionContext, source_name: str, source: Any) -> None:
    """An optional endpoint the site lacks or refuses: the run goes on; one line says what is missing."""
    def on_gap(gap: dict) -> None:
        line = f"{gap['endpoint']}: {gap['status']}: {gap['what']}"
        context.log.warning(f"{source_name}: {line}")
        progress.emit(context, {"source": source_name, "partition": "_site", "event": "note", "message": line})
    source.on_gap = on_gap


@_extract_asset(group_name="github", pool="github_api", retry_policy=EXTRACT_RETRY, kinds={"github"}, deps=["sources"],
          description="GitHub organisation teams and their members (name, email), as this run sees them: the "
                      "teams and identity joins used when flowlens.toml configures none.")
def github_site(context: dg.AssetExecutionContext, github: GitHubResource) -> dg.MaterializeResult:
    from pipelines.assets.transform import run_as_of

    cfg = github.config()
    if cfg.teams and cfg.identities:
        return dg.MaterializeResult(metadata={"skipped": "teams and identities are configured in flowlens.toml"})
    try:
        source = github.connect(cfg)
    except SourceSkipped as e:
        context.log.warning(str(e))
        return dg.MaterializeResult(metadata={"skipped": str(e)})
    except ConnectorError as e:
        raise dg.Failure(description=str(e), allow_retries=e.retryable) from None
    try:
        with _fails_as_connector_says():
            result = source.extract_teams(github.paths().landing, run_as_of(context).isoformat())
    finally:
        _tell_requests(context, "github", source, "site")
    return dg.MaterializeResult(metadata={"api_requests": result.requests,
                                          **{f"records_{s}": n for s, n in sorted(result.records.items())}})


@_extract_asset(group_name="jira", pool="jira_api", partitions_def=JIRA_PROJECTS, retry_policy=EXTRACT_RETRY,
          deps=["sources"],
          kinds={"jira"},
          description="One Jira project's changed issues, changelogs and approvals, landed as raw pages.")
def jira_extract(context: dg.AssetExecutionContext, jira: JiraResource,
                 warehouse: WarehouseResource) -> dg.MaterializeResult:
    cfg = jira.config()
    with _fails_as_connector_says():  # SourceSkipped here is a failure: the partition asked for Jira
        source = jira.connect(cfg)
    _tell_gaps(context, "jira", source)
    landing = jira.paths().landing
    cursors = full_refresh.cursors(context, "jira", read_cursors_retrying(warehouse.paths().warehouse))
    every = 1 if "jira" in full_refresh.sources(context) else cfg.sources.jira.reconcile_every_runs
    keys = [k for k in _keys(context) if not _done_this_run(context, landing, "jira", k)]

    def many(keys: list[str], report: Callable[[dict], None]) -> dict[str, Any]:
        reconcile = [k for k in keys if _run_counter(landing, "jira", k) % every == 0]
        return source.extract_projects(landing, {k: cursors.get(("jira", k)) for k in keys}, reconcile=reconcile,
                                       progress=report)
    return _extract_many(context, "jira", keys, many, source)


@_extract_asset(group_name="github", pool="github_api", partitions_def=GITHUB_REPOSITORIES, retry_policy=EXTRACT_RETRY,
          deps=["sources"],
          kinds={"github"},
          description="One GitHub repository's pull requests, issues, reviews and timelines, landed as raw pages.")
def github_extract(context: dg.AssetExecutionContext, github: GitHubResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    with _fails_as_connector_says():  # SourceSkipped here is a failure: the partition asked for GitHub
        source = github.connect()
    landing = github.paths().landing
    cursors = full_refresh.cursors(context, "github", read_cursors_retrying(warehouse.paths().warehouse))
    keys = [k for k in _keys(context) if not _done_this_run(context, landing, "github", k)]

    def many(keys: list[str], report: Callable[[dict], None]) -> dict[str, Any]:
        if any(cursors.get(("github", k)) for k in keys):
            try:  # lets the multi-repository searches name whole organisations (`org:`) instead of each repository
                source.discover_repositories()
            except ConnectorError as e:
                context.log.warning(f"github: discovery failed, searching repository by name: {e}")
        return source.extract_repositories(landing, {k: cursors.get(("github", k)) for k in keys},
                                           progress=report, parallel=PARALLEL_PARTITIONS)
    return _extract_many(context, "github", keys, many, source)


@dg.asset(group_name="sources", kinds={"python"},
          description="Which Jira projects and GitHub repositories to extract (flowlens.toml, else discovery); the "
                      "source_partitions sensor makes them the extract partitions.")
def sources(context: dg.AssetExecutionContext, jira: JiraResource, github: GitHubResource) -> dg.MaterializeResult:
    from pipelines.config import ConfigError

    sent: dict[str, int] = {}
    try:
        found, notes = discover(jira, github, sent)
    except ConfigError as e:  # a broken configuration: one line, not retried; `flowlens run` exits 2
        raise dg.Failure(description=str(e), metadata={"config_error": str(e)}, allow_retries=False) from None
    finally:
        for name, n in sent.items():
            progress.emit(context, {"source": name, "partition": "_discovery", "event": "requests", "what": "discovery",
                                    "requests": n})
    for note in notes:
        context.log.warning(note)
    if not found:
        raise dg.Failure(description="no source to extract: " + "; ".join(notes), allow_retries=False)
    # The instance is not changed here: the `source_partitions` sensor (pipelines/schedules.py) makes these the
    # extract partitions, from this metadata.
    return dg.MaterializeResult(metadata={
        FOUND_KEY: dg.MetadataValue.json(found),
        **{f"{k}_partitions": len(v) for k, v in found.items()},
        "skipped": "; ".join(notes) or "none",
        "partitions": dg.MetadataValue.md("\n".join(f"- {k}: {', '.join(v)}" for k, v in found.items()))})


def discover(jira: JiraResource, github: GitHubResource,
             sent: dict[str, int] | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """Partition keys per source from flowlens.toml and discovery; plus one line per skipped source. The
    configuration is checked first (pipelines/preflight.py): a mistake is a ConfigError, before any extract.
    `sent` gets the API requests each source's discovery sent."""
    from connectors.http import ConnectorError
    from pipelines.preflight import preflight, scope

    env = {**os.environ, "FLOWLENS_HOME": jira.home} if jira.home else None  # this run's home, passed in
    cfg = preflight(jira.config_path, env)
    found: dict[str, list[str]] = {}
    notes: list[str] = []
    for name, res in (("jira", jira), ("github", github)):
        try:
            source, found[name] = scope(name, res, cfg)
            if sent is not None:
                sent[name] = source.client.log.total
        except SourceSkipped as e:
            notes.append(str(e))
        except ConnectorError as e:
            raise ConnectorError(f"{'Jira' if name == 'jira' else 'GitHub'}: {e}") from None
    return found, notes


PARTITIONS = {"jira": JIRA_PROJECTS, "github": GITHUB_REPOSITORIES}
