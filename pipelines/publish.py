"""Publish: copy the finished warehouse beside the BI snapshot and rename it into place (atomic on POSIX).

BI tools open only the published file, so they never hold the lock the pipeline needs, and a reader sees
either the previous snapshot or the new one, never a half-built one (docs/design.md, "Known traps").
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def publish(warehouse: str | os.PathLike, published: str | os.PathLike) -> dict:
    """CHECKPOINT and close the warehouse, copy it to a temp file beside `published`, fsync, os.replace."""
    import duckdb

    src, dst = Path(warehouse), Path(published)
    con = duckdb.connect(str(src))
    try:
        con.execute("checkpoint")
    finally:
        con.close()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check = duckdb.connect(str(tmp), read_only=True)  # a copy DuckDB cannot open is never published
        try:
            tables = check.execute("select count(*) from information_schema.tables "
                                   "where table_schema not in ('information_schema', 'pg_catalog')").fetchone()[0]
        finally:
            check.close()
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return {"path": str(dst), "bytes": dst.stat().st_size, "tables": int(tables)}
