"""The `flowlens` command: run, demo, check, sandbox."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

DEMO_MARKER = ".flowlens-demo"


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", help="flowlens.toml (default: FLOWLENS_CONFIG, ./flowlens.toml, "
                                                    "else sync everything the credentials can see)")


def _fail(msg: str, code: int = 1) -> int:
    print(f"flowlens: {msg}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines import lock as home_lock
    from pipelines.config import EXIT_CONFIG, ConfigError
    from pipelines.full_refresh import parse as parse_full_refresh
    from pipelines.preflight import preflight

    try:
        refresh = parse_full_refresh(args.full_refresh) if args.full_refresh is not None else ()
    except ValueError as e:
        print(f"flowlens: {e}", file=sys.stderr)
        return 2
    try:
        preflight(args.config)  # a broken configuration: one line, before the lock and any API call
        with home_lock.acquire(home_lock.home_from_env()):  # at once, before Dagster is even imported
            from pipelines.run import run_all

            summary = run_all(args.config, full_refresh=refresh)
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    if summary.config_error:  # found by asking the servers, before any extract
        return _fail(summary.config_error, EXIT_CONFIG)
    from pipelines.resources import Home
    from pipelines.run import format_summary

    print(format_summary(summary, Home.from_env().root), file=sys.stderr)
    return 0 if summary.ok else 1


def _demo_home() -> Path | str:
    """FLOWLENS_HOME, else ./var/demo; a folder holding a real (non-demo) warehouse is refused."""
    home = Path(os.environ.get("FLOWLENS_HOME") or "var/demo").absolute()
    if (home / "warehouse.duckdb").exists() and not (home / DEMO_MARKER).exists():
        return (f"{home} holds a warehouse that is not the demo's; set FLOWLENS_HOME to another folder "
                "for the demo")
    return home


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines import lock as home_lock

    home = _demo_home()
    if isinstance(home, str):
        return _fail(home)
    with home_lock.acquire(home):  # like `flowlens run`: at once, before anything in the home is replaced
        return _demo(args, home)


def _demo(args: argparse.Namespace, home: Path) -> int:
    from pipelines.report import read_published, text_table
    from pipelines.run import format_summary, run_all
    from sandbox.generator import config_toml, generate
    from sandbox.server import Sandbox

    t0 = time.perf_counter()
    for stale in ("warehouse.duckdb", "warehouse.duckdb.wal", "landing", "dagster"):  # every demo starts afresh
        p = home / stale
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text("this folder is flowlens demo data; `flowlens demo` replaces it\n")
    print(f"generating the sandbox organisation ({args.scale}, seed {args.seed})", file=sys.stderr)
    store = generate(args.scale, args.seed)
    with Sandbox(store, host="127.0.0.1", port=0, jira_deployment=args.jira_deployment) as sb:
        print(f"sandbox serving Jira and GitHub at {sb.url}: {len(store.jira_issues)} Jira issues, "
              f"{len(store.github_pulls)} pull requests, {len(store.github_issues)} GitHub issues", file=sys.stderr)
        config = home / "flowlens.toml"
        config.write_text(config_toml(store, args.jira_deployment), encoding="utf-8")
        for name in ("JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PAT"):  # only the sandbox's credentials
            os.environ.pop(name, None)
        os.environ.update(sb.env())
        # The sandbox's clock, not the wall clock: its organisation's "now" is fixed, so is the demo's.
        as_of = os.environ.get("FLOWLENS_AS_OF") or store.now.isoformat()
        summary = run_all(str(config), home, as_of=as_of)
    print(format_summary(summary, home), file=sys.stderr)
    if not summary.ok:
        return 1
    rows, _ = read_published(home / "published" / "flowlens.duckdb")
    print()
    print(text_table(rows))
    print()
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    print(f"published warehouse (open it with duckdb or a BI tool): {home / 'published' / 'flowlens.duckdb'}")
    print(f"report: {home / 'report.html'}")
    print(f"configuration used: {config}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.html from the published warehouse (what the nightly run's `report` asset does)."""
    from pipelines.config import ConfigError, load_config
    from pipelines.report import write_report
    from pipelines.resources import Home

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        return _fail(str(e))
    if args.weeks is not None and args.weeks < 1:
        return _fail(f"--weeks must be 1 or more (got {args.weeks})")
    home = Home.from_env()
    published, out = Path(args.published or home.published), Path(args.out or home.report)
    if not published.is_file():
        return _fail(f"no published warehouse at {published}: run `flowlens run` first (or pass --published)")
    t0 = time.perf_counter()
    write_report(published, out, cfg, weeks=args.weeks)
    print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration and the environment, then reach every configured source and prove the
    configured scope exists there; one line per problem. Exit 2: the configuration is wrong; 1: a source
    cannot be reached."""
    from connectors.http import ConnectorError
    from pipelines.config import EXIT_CONFIG, ConfigError, load_config
    from pipelines.preflight import check_environment, scope
    from pipelines.resources import GitHubResource, JiraResource, SourceSkipped
    from pipelines.sqlmodels import ModelError
    from pipelines.warehouse import models

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    print(f"configuration: {cfg.path or 'none (defaults: everything the credentials can see)'}: ok")
    try:
        print(f"models: {len(models())} in sql/, each header matching what its SQL reads: ok")
    except ModelError as e:
        return _fail(str(e))
    try:
        check_environment(cfg, os.environ)  # what `flowlens run` checks before it starts (pipelines/preflight.py)
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    unreachable, wrong = 0, 0
    sources = (("jira", "Jira", JiraResource(config_path=args.config)),
               ("github", "GitHub", GitHubResource(config_path=args.config)))
    for key, name, res in sources:
        try:
            source, keys = scope(key, res, cfg)
        except SourceSkipped as e:
            print(str(e))
            continue
        except ConfigError as e:
            wrong += 1
            print(f"flowlens: {e}", file=sys.stderr)
            continue
        except ConnectorError as e:
            unreachable += 1
            print(f"{name}: {e}", file=sys.stderr)
            continue
        what = "projects" if key == "jira" else "repositories"
        print(f"{name}: reachable, {len(keys)} {what} to extract" + (f" ({', '.join(keys[:8])}"
              f"{', ...' if len(keys) > 8 else ''})" if keys else ""))
        if not keys:
            unreachable += 1
            print(f"{name}: no {what} to extract: check the credentials' access and flowlens.toml", file=sys.stderr)
        if hasattr(source, "probe"):  # every endpoint a run calls: a required one failing is a problem
            unreachable += _print_probe(name, source.probe(keys))
    return EXIT_CONFIG if wrong else 1 if unreachable else 0


def _print_probe(name: str, results: list[dict]) -> int:
    """One line per endpoint the source cannot use (optional ones say what the run does without them);
    returns how many required ones failed."""
    failed = [r for r in results if not r["ok"] and not r["optional"]]
    for r in results:
        if not r["ok"]:
            kind = "optional, the run goes on without it" if r["optional"] else "required"
            print(f"{name}: {r['endpoint']}: {kind}: {r['message']}", file=sys.stdout if r["optional"] else sys.stderr)
    print(f"{name}: {sum(r['ok'] for r in results)} of {len(results)} endpoints a run calls answered")
    return len(failed)


def cmd_teams(args: argparse.Namespace) -> int:
    """Print the teams and identities the last run found, as flowlens.toml sections."""
    import duckdb

    from pipelines.resources import Home
    from pipelines.teams import toml_sections

    path = Home.from_env().warehouse
    if not path.exists():
        return _fail(f"no warehouse at {path}: run `flowlens run` first (FLOWLENS_HOME chooses where)")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            print(toml_sections(con))
    except duckdb.CatalogException:
        return _fail(f"{path} has no teams yet (core.teams): run `flowlens run` first")
    except duckdb.IOException as e:
        return _fail(f"cannot read {path}: {str(e).splitlines()[0]} (a run in progress holds it; try again after)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowlens", description="Measure how work flows through Jira and GitHub.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="extract, load, transform, publish and report once, with progress")
    _add_config(p)
    p.add_argument("--full-refresh", nargs="?", const="all", default=None, metavar="SOURCE",
                   help="re-extract everything (or only jira / github) and replace what was loaded")
    p = sub.add_parser("demo", help="run everything against a local sandbox and print the headline metrics")
    p.add_argument("--scale", choices=("small", "medium"), default="small", help="sandbox size (default small)")
    p.add_argument("--seed", type=int, default=1, help="sandbox generator seed")
    p.add_argument("--jira-deployment", choices=("cloud", "datacenter"), default="cloud")
    p = sub.add_parser("check", help="validate flowlens.toml and reach every configured source")
    _add_config(p)
    p = sub.add_parser("teams", help="print the teams and identities the last run found, as flowlens.toml "
                                     "sections to start from")
    _add_config(p)
    p = sub.add_parser("report", help="write report.html (charts, offline) from the published warehouse")
    _add_config(p)
    p.add_argument("--weeks", type=int, metavar="N", help="the period: the last N weeks up to the data's as_of "
                                                          "(default: report.weeks in flowlens.toml, else 12)")
    p.add_argument("--published", metavar="PATH", help="default: FLOWLENS_HOME/published/flowlens.duckdb")
    p.add_argument("--out", metavar="PATH", help="default: FLOWLENS_HOME/report.html")

    from sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(sub.add_parser("sandbox", help="a local Jira and GitHub that speak the real APIs"))
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        return sandbox_cli.run(args)
    handlers = {"run": cmd_run, "demo": cmd_demo, "check": cmd_check, "report": cmd_report, "teams": cmd_teams}
    from pipelines.lock import HomeLocked
    from pipelines.run import Stopped

    try:
        return handlers[args.command](args)
    except HomeLocked as e:
        return _fail(str(e))
    except Stopped as e:  # SIGTERM (or Ctrl-C): the lock is released; the next run repairs what was half done
        return _fail(str(e), 128 + (signal.SIGTERM if "SIGTERM" in str(e) else signal.SIGINT))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
