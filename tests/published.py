"""A sandbox organisation's working warehouse and its published BI snapshot, built without HTTP (for the BI,
privacy, report and notebook tests)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Config, load_config
from pipelines.publish import publish
from pipelines.warehouse import load, run_models
from sandbox.gen_config import config_toml
from tests.test_warehouse_truth import land_store

KEY = "a test key that is long enough"  # FLOWLENS_PSEUDONYM_KEY of the pseudonymised builds
SMALL_TEAM = "security"  # 3 members in the sandbox: under MIN_GROUP_SIZE
MIN_GROUP_SIZE = 4


@dataclass(frozen=True)
class Built:
    warehouse: Path
    published: Path
    config: Config


def build(root: Path, store, *, min_group_size: int = MIN_GROUP_SIZE, pseudonymize: bool = False,
          warehouse: Path | None = None) -> Built:
    """Land the store, load, build every model, publish. `warehouse`: reuse one already built."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "flowlens.toml").write_text(config_toml(store, "cloud"))
    cfg = load_config(root / "flowlens.toml")
    cfg = cfg.model_copy(update={"privacy": cfg.privacy.model_copy(
        update={"min_group_size": min_group_size, "pseudonymize": pseudonymize})})
    db = root / "warehouse.duckdb"
    if warehouse is not None:
        shutil.copyfile(warehouse, db)
    else:
        land_store(store, root / "landing", "cloud")
        load(db, root / "landing")
        run_models(db, cfg, store.now)
    out = root / "published" / "flowlens.duckdb"
    publish(db, out, cfg, environ={"FLOWLENS_PSEUDONYM_KEY": KEY} if pseudonymize else {})
    return Built(db, out, cfg)


def duckdb_1x() -> Path:
    """The DuckDB 1.x command line (the `duckdb-cli` package of the dev extra); fails with the install hint."""
    cli = Path(sys.executable).parent / "duckdb"
    if not cli.exists():
        raise AssertionError(f"no DuckDB 1.x CLI at {cli}: pip install 'duckdb-cli>=1.4.4,<1.5' "
                             "(the dev extra has it: pip install -e '.[dev]')")
    return cli
