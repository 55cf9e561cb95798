"""`make bench`: API requests per item, and transform time and memory, at several scales.

Each benchmark module exposes `run(scale) -> dict` of figures; this prints them and keeps a JSON copy
under benchmarks/results/. `python -m benchmarks [name ...] [--scales small,medium,large]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

BENCHMARKS = {
    "jira": ("benchmarks.bench_jira", ("small", "medium")),
    "github": ("benchmarks.bench_github", ("small", "medium")),
    "transform": ("benchmarks.bench_transform", ("medium", "large")),
    "report": ("benchmarks.bench_report", ("medium",)),
    "sandbox": ("benchmarks.bench_sandbox", ("medium",)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("names", nargs="*", help=f"which: {', '.join(BENCHMARKS)} (default all)")
    parser.add_argument("--scales", help="comma-separated scales, overriding each benchmark's defaults")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results: dict[str, dict] = {}
    for name in args.names or list(BENCHMARKS):
        module_name, scales = BENCHMARKS[name]
        module = importlib.import_module(module_name)
        for scale in args.scales.split(",") if args.scales else scales:
            started = time.perf_counter()
            print(f"== {name} @ {scale} ...", flush=True)
            figures = module.run(scale)
            figures["wall_s"] = round(time.perf_counter() - started, 1)
            results[f"{name}/{scale}"] = figures
            for key, value in figures.items():
                print(f"   {key:<40} {value}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / time.strftime("bench-%Y%m%dT%H%M%S.json")
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
