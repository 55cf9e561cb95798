"""`flowlens sandbox`: serve the generated organisation, or write its pages to disk."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time

SCALES = ("small", "medium", "large")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=SCALES, default="small", help="size of the organisation (default small)")
    p.add_argument("--seed", type=int, default=1, help="generator seed: the same seed gives the same data")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    p.add_argument("--jira-deployment", choices=("cloud", "datacenter"), default="cloud",
                   help="serve Jira Cloud (search/jql, accountIds, Basic auth) or Data Center (PATs)")
    p.add_argument("--jira-oauth", action="store_true",
                   help="Data Center also accepts OAuth 1.0a (RSA-SHA1, an application link); the exports give "
                        "the JIRA_OAUTH_* variables instead of JIRA_PAT")
    p.add_argument("--jira-no-issue-linking", action="store_true",
                   help="a site whose admin disabled issue linking: GET issueLinkType answers 404")
    p.add_argument("--jira-deny-jsm", action="store_true",
                   help="the credentials may not use Jira Service Management: servicedeskapi answers 403 and the "
                        "Approvals field is hidden")
    p.add_argument("--jira-deny-remote-links", action="store_true",
                   help="GET issue/{key}/remotelink answers 403 (a site or proxy refusing it)")
    p.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                   help="share of API requests answered with 429/403/502/503 or a reset connection")
    p.add_argument("--latency-ms", type=float, default=0.0, help="mean added latency per request")
    p.add_argument("--write-truth", metavar="FILE",
                   help="instead of serving, write what docs/metrics.md says every item's metrics are (JSON)")
    p.add_argument("--write-config", metavar="FILE",
                   help="instead of serving, write a flowlens.toml describing the organisation")
    p.add_argument("--write-pages", metavar="DIR",
                   help="instead of serving, stream the organisation's API pages as JSON lines into DIR "
                        "(bounded memory; for the large benchmark)")


def run(args: argparse.Namespace) -> int:
    from sandbox import generator

    if args.write_pages:
        started = time.perf_counter()
        summary = generator.write_pages(args.scale, args.seed, args.write_pages)
        print(f"wrote {summary} to {args.write_pages} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 0
    if args.write_truth or args.write_config:
        if args.scale == "large":
            print("flowlens sandbox: truth and config are for small and medium", file=sys.stderr)
            return 2
        import json
        from pathlib import Path

        from sandbox import truth

        store = generator.generate(args.scale, args.seed)
        if args.write_config:
            Path(args.write_config).write_text(generator.config_toml(store, args.jira_deployment))
        if args.write_truth:
            Path(args.write_truth).write_text(json.dumps(truth.to_json(truth.compute(
                store, jira_deployment=args.jira_deployment)), indent=1))
        return 0
    if args.scale == "large":
        print("flowlens sandbox: large is generated to disk, not served; use --write-pages DIR", file=sys.stderr)
        return 2
    from sandbox.server import Sandbox

    started = time.perf_counter()
    store = generator.generate(args.scale, args.seed)
    try:
        sb = Sandbox(store, host=args.host, port=args.port, jira_deployment=args.jira_deployment)
    except OSError as e:
        print(f"flowlens sandbox: cannot listen on {args.host}:{args.port} ({e.strerror}); "
              "choose another --port, or --port 0 for a free one", file=sys.stderr)
        return 2
    if args.jira_oauth:
        if args.jira_deployment != "datacenter":
            print("flowlens sandbox: --jira-oauth is for --jira-deployment datacenter (Cloud has no OAuth 1.0a)",
                  file=sys.stderr)
            return 2
        sb.app.jira_oauth = True
    if args.jira_no_issue_linking or args.jira_deny_jsm or args.jira_deny_remote_links:
        from sandbox.jira_api import JiraSite

        sb.app.jira_site = JiraSite(issue_linking=not args.jira_no_issue_linking,
                                    jsm="denied" if args.jira_deny_jsm else "on",
                                    remote_links="denied" if args.jira_deny_remote_links else "on")
    if args.faults:
        sb.app.set_faults(rate=args.faults)
    sb.app.latency_ms = args.latency_ms
    sb.start()
    for name, value in sb.env().items():
        print(f"export {name}={shlex.quote(value)}")
    # The organisation's clock, not the wall clock: a run measures at the sandbox's "now", as `flowlens demo` does.
    print(f"export FLOWLENS_AS_OF={store.now.isoformat()}")
    sys.stdout.flush()
    print(f"# sandbox: {len(store.jira_issues)} Jira issues, {len(store.github_pulls)} pull requests, "
          f"{len(store.github_issues)} GitHub issues (seed {args.seed}, generated in "
          f"{time.perf_counter() - started:.1f} s); serving at {sb.url}; Ctrl-C stops", file=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sb.stop()
    return 0
