"""The `flowlens` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowlens", description="Measure how work flows through Jira and GitHub.")
    sub = parser.add_subparsers(dest="command", required=True)

    from sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(sub.add_parser("sandbox", help="a local Jira and GitHub that speak the real APIs"))
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        return sandbox_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
