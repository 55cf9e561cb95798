"""The published file and the report at scale: publish, then report.html cold (chart libraries bundled) and warm.

Uses the warehouse bench_transform leaves under var/bench/<scale>/ (built first if missing). Each step runs in
a fresh subprocess, as the nightly run's assets do. Goal (issue 14): the medium report under 10 s and 5 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import bench_transform

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
step, base = sys.argv[1], Path(sys.argv[2])
t0 = time.perf_counter()
out = {}
if step == "publish":
    from pipelines.publish import publish
    info = publish(base / "warehouse.duckdb", base / "report" / "published" / "flowlens.duckdb")
    out = {k: info[k] for k in ("bytes", "tables", "storage_version")}
else:
    from pipelines.report import write_report
    write_report(base / "report" / "published" / "flowlens.duckdb", base / "report" / "report.html",
                 cache_dir=base / "report" / "cache")
    out["bytes"] = (base / "report" / "report.html").stat().st_size
out["seconds"] = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
out["cpu_s"] = ru.ru_utime + ru.ru_stime  # the work itself, whatever else the machine is doing
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def _child(step: str, base: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, step, str(base)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench report step {step} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _has_marts(path: Path) -> bool:
    import duckdb

    if not path.exists():
        return False
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select count(*) from duckdb_tables() where schema_name = 'marts' "
                           "and table_name = 'item_flow'").fetchone()[0] == 1
    finally:
        con.close()


def run(scale: str) -> dict:
    base = ROOT / "var" / "bench" / scale
    if not _has_marts(base / "warehouse.duckdb"):
        bench_transform.run(scale)  # generates, loads and builds the models
    shutil.rmtree(base / "report", ignore_errors=True)
    pub = _child("publish", base)
    cold = _child("report", base)  # no bundle in the cache yet
    warm = _child("report", base)
    return {"published_mb": round(pub["bytes"] / 1e6, 1), "publish_s": round(pub["seconds"], 1),
            "publish_peak_rss_mb": round(pub["peak_rss_mb"]), "storage_version": pub["storage_version"],
            "report_mb": round(warm["bytes"] / 1e6, 2), "report_cold_s": round(cold["seconds"], 1),
            "report_cold_cpu_s": round(cold["cpu_s"], 1), "report_warm_s": round(warm["seconds"], 1),
            "report_warm_cpu_s": round(warm["cpu_s"], 1), "report_peak_rss_mb": round(warm["peak_rss_mb"]),
            "load_average": round(os.getloadavg()[0], 1)}
