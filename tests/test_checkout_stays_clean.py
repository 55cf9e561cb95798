"""The documented Dagster commands, run from a checkout, leave nothing there that git does not ignore."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]


def checkout_copy(dest: Path) -> Path:
    """A git repository holding this working tree's files (committed or not, ignored ones left out)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    subprocess.run([*GIT, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "copy"], cwd=dest, check=True)
    return dest


def not_ignored(repo: Path) -> list[str]:
    """Every file or folder, empty ones included, that is neither tracked nor ignored."""
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    keep = set(tracked) | {str(Path(t).parents[i]) for t in tracked for i in range(len(Path(t).parents) - 1)}
    found, stack = [], [repo]
    while stack:
        for p in sorted(stack.pop().iterdir()):
            rel = str(p.relative_to(repo))
            if rel == ".git" or rel in keep and p.is_file():
                continue
            ignored = subprocess.run(["git", "check-ignore", "-q", rel + ("/" if p.is_dir() else "")],
                                     cwd=repo, check=False).returncode == 0
            if ignored:
                continue
            if rel in keep:
                stack.append(p)
            else:
                found.append(rel + ("/" if p.is_dir() else ""))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dagster_commands_leave_the_checkout_clean(tmp_path):
    repo = checkout_copy(tmp_path / "flowlens")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_", "DAGSTER_"))}
    env |= {"PYTHONPATH": str(repo)}
    home = env | {"DAGSTER_HOME": str(repo)}  # docs/deploy.md: DAGSTER_HOME=$PWD

    def run(args: list[str], e: dict[str, str]) -> None:
        proc = subprocess.run(args, cwd=repo, env=e, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run([str(BIN / "dagster"), "definitions", "validate"], env)
    # A step's run writes compute logs (Dagster's default: $DAGSTER_HOME/storage).
    run([str(BIN / "dagster"), "asset", "materialize", "-m", "pipelines.definitions", "--select", "load"], home)
    # The webserver and daemon make folders in DAGSTER_HOME as they start, before the UI answers.
    port = free_port()
    dev = subprocess.Popen([str(BIN / "dagster"), "dev", "-p", str(port)], cwd=repo, env=home,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert dev.poll() is None, "dagster dev exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "dagster dev did not answer"
            time.sleep(1)
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
    assert (repo / "var" / "dagster").is_dir()  # the commands did write their instance, where configured
    assert not_ignored(repo) == []
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout == ""
