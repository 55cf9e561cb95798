"""`make dev`: the Dagster UI (`dagster dev`). With neither JIRA_URL nor GITHUB_TOKEN set it serves against a local
sandbox (the demo's organisation), on the demo's home and Dagster instance (var/demo), so the UI shows the runs and
assets `make demo` made and is never empty for a newcomer. With credentials it is plain `dagster dev`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dagster = str(Path(sys.executable).parent / "dagster")
    root = Path(__file__).resolve().parent.parent  # pyproject.toml names the code location
    env = dict(os.environ)
    if env.get("JIRA_URL") or env.get("GITHUB_TOKEN"):
        return subprocess.call([dagster, "dev", *argv], env=env, cwd=root)

    from pipelines.run import instance_for
    from sandbox.generator import config_toml, generate
    from sandbox.server import Sandbox

    home = Path(env.get("FLOWLENS_HOME") or "var/demo").absolute()
    home.mkdir(parents=True, exist_ok=True)
    store = generate("small", 1)
    config = home / "flowlens.toml"
    if not config.exists():
        config.write_text(config_toml(store, "cloud"), encoding="utf-8")
    instance_for(home).dispose()  # the demo's instance (created if the demo never ran)
    with Sandbox(store, host="127.0.0.1", port=0) as sb:
        env.update(sb.env())
        env.setdefault("FLOWLENS_HOME", str(home))
        env.setdefault("FLOWLENS_CONFIG", str(config))
        env.setdefault("FLOWLENS_AS_OF", store.now.isoformat())
        env.setdefault("DAGSTER_HOME", str(home / "dagster"))
        print(f"make dev: no JIRA_URL or GITHUB_TOKEN: serving against the sandbox at {sb.url}, on {home} and its "
              f"Dagster instance ({env['DAGSTER_HOME']})", file=sys.stderr)
        try:
            return subprocess.call([dagster, "dev", *argv], env=env, cwd=root)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    raise SystemExit(main())
