"""flowlens for analysts: the published warehouse's marts as polars data frames, in a notebook or a script.

    import flowlens
    flow = flowlens.mart("item_flow")        # one mart, read from the latest published snapshot
    with flowlens.open() as wh:              # several reads from one snapshot
        waits = wh.sql("select cause, sum(calendar_s) / 86400 as days from marts.wait_intervals group by all")

The file is opened read-only and closed again: the nightly run can always replace it (docs/bi.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Self

import duckdb
import polars as pl

__all__ = ["Warehouse", "frame", "mart", "open", "published_path", "sql"]

_NAME = re.compile(r"^(?:(marts|dims|meta)\.)?([a-z][a-z0-9_]*)$")


def published_path(path: str | os.PathLike | None = None) -> Path:
    """`path`, else FLOWLENS_HOME/published/flowlens.duckdb (FLOWLENS_HOME defaults to ./var)."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("FLOWLENS_HOME") or "var") / "published" / "flowlens.duckdb"


def frame(relation: Any) -> pl.DataFrame:
    """A DuckDB relation as a polars DataFrame, through the Arrow C stream (duckdb's `.pl()` needs pyarrow)."""
    return pl.DataFrame(relation)


class Warehouse:
    """A read-only connection to one published snapshot; close it (or use `with`) to see the next one."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = published_path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no published warehouse at {self.path}: run `flowlens run` (or `flowlens demo`), "
                                    "or pass its path / set FLOWLENS_HOME")
        self._con = duckdb.connect(str(self.path), read_only=True)
        self._con.execute("set TimeZone = 'UTC'")

    def tables(self) -> list[str]:
        """Every published table, as schema.name (marts.*, dims.*, meta.snapshot)."""
        return [f"{s}.{t}" for s, t in self._con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            "order by 1, 2").fetchall()]

    def marts(self) -> list[str]:
        return [t.removeprefix("marts.") for t in self.tables() if t.startswith("marts.")]

    def mart(self, name: str) -> pl.DataFrame:
        """A whole table: "item_flow" (a mart), or "dims.people", "meta.snapshot"."""
        m = _NAME.match(name)
        qualified = f"{m.group(1) or 'marts'}.{m.group(2)}" if m else None
        if qualified not in self.tables():
            raise KeyError(f"no table {name!r} in {self.path}; marts: {', '.join(self.marts())}")
        return frame(self._con.sql(f"select * from {qualified}"))

    def sql(self, query: str) -> pl.DataFrame:
        """Any read-only query over the snapshot."""
        return frame(self._con.sql(query))

    @property
    def as_of(self) -> Any:
        """The instant the run measured at."""
        return self._con.execute("select as_of from meta.snapshot").fetchone()[0]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(path: str | os.PathLike | None = None) -> Warehouse:
    """The published warehouse, read-only (`flowlens.open`, as `gzip.open`)."""
    return Warehouse(path)


def mart(name: str, path: str | os.PathLike | None = None) -> pl.DataFrame:
    """One table of the latest published snapshot as a polars DataFrame (the file is closed again)."""
    with Warehouse(path) as wh:
        return wh.mart(name)


def sql(query: str, path: str | os.PathLike | None = None) -> pl.DataFrame:
    """One query over the latest published snapshot as a polars DataFrame."""
    with Warehouse(path) as wh:
        return wh.sql(query)

