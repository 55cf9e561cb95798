"""`pip install .` (not editable) gives a working flowlens: the wheel carries what the code reads at run time
(the SQL models in sql/, the sandbox's API descriptions in sandbox/specs/), and `flowlens demo` runs from it.

The wheel is built from a copy of the checkout and installed into a fresh virtual environment; that
environment sees this one's dependencies through a path entry (no download, no editable install: the
checkout's own .pth files are not processed there), and the demo runs outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DATA = ("sql", "sandbox/specs")  # folders the code reads files from at run time


def source_files() -> list[str]:
    """The checkout's files, committed or not, ignored ones left out (what a user's clone holds)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode().split("\0")
    return [f for f in out if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for f in source_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("flowlens-*.whl")
    return whl


def test_the_wheel_carries_every_file_read_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [f for f in source_files() if f.startswith(tuple(d + "/" for d in RUNTIME_DATA))]
    assert any(f.endswith(".sql") for f in wanted)
    assert sorted(f for f in wanted if f not in names) == []


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a whole demo; minutes on a loaded machine
def test_flowlens_demo_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this environment's dependencies as a plain path: its .pth files (the editable checkout) are not read
    Path(site, "flowlens_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_", "PYTHON"))}
    where = subprocess.run([str(py), "-c", "import pipelines.warehouse as w; print(w.SQL_DIR)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT), where

    home = tmp_path / "home"
    proc = subprocess.run([str(venv / "bin" / "flowlens"), "demo"], cwd=tmp_path, capture_output=True, text=True,
                          env=env | {"FLOWLENS_HOME": str(home)}, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "handoffs/item" in proc.stdout
    assert (home / "published" / "flowlens.duckdb").is_file() and (home / "report.html").is_file()
