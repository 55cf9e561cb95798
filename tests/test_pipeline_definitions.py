"""The code location: validates, builds its resources without credentials, and the webserver serves it."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict[str, str]:
    """A DAGSTER_HOME of our own with the repo's dagster.yaml; relative storage paths land under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "GITHUB_", "FLOWLENS_"))}
    return env | {"DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT), "FLOWLENS_HOME": str(tmp_path / "var")}


def test_definitions_validate(tmp_path):
    proc = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "pipelines.definitions"],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_resources_build_without_credentials(monkeypatch):
    from pipelines.definitions import defs
    from pipelines.resources import SourceSkipped

    for name in ("JIRA_URL", "GITHUB_TOKEN", "FLOWLENS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(Path("/"))
    resources = defs.resources
    assert set(resources) >= {"jira", "github", "warehouse"}
    for name in ("jira", "github"):
        try:
            resources[name].settings()
            raise AssertionError(f"{name} settings built without credentials")
        except SourceSkipped as e:
            assert "not set" in str(e) and "\n" not in str(e)


def test_every_warehouse_writer_is_in_the_warehouse_pool():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    writers = [k for k in graph.get_all_asset_keys()
               if k.path[0] in ("load", "staging", "core", "marts", "published_warehouse")]
    assert len(writers) > 3
    for key in writers:
        assert graph.get(key).pools == {"warehouse"}, key
    assert graph.get(dg.AssetKey("jira_extract")).pools == {"jira_api"}
    assert graph.get(dg.AssetKey("github_extract")).pools == {"github_api"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["data"]


QUERY = """
{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { name
      schedules { name cronSchedule executionTimezone }
      sensors { name } } } } }
"""


def test_webserver_serves_assets_checks_and_schedule(tmp_path):
    port = _free_port()
    log = open(tmp_path / "webserver.log", "w")  # noqa: SIM115 - outlives the Popen call
    proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-m", "pipelines.definitions", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=tmp_path, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "webserver.log").read_text()
            try:
                data = _graphql(port, QUERY)
                if data["assetNodes"]:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert data and data["assetNodes"], (tmp_path / "webserver.log").read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
    assert {"sources", "jira_site", "jira_extract", "github_extract", "load", "published_warehouse",
            "report"} <= keys
    assert {"marts/item_flow", "marts/team_weekly", "core/status_map"} <= keys
    checks = {("/".join(n["assetKey"]["path"]), c["name"]): c["blocking"] for n in data["assetNodes"]
              for c in (n.get("assetChecksOrError") or {}).get("checks", [])}
    assert checks[("marts/item_flow", "keys_unique")] is True
    assert checks[("marts/item_flow", "durations_valid")] is True
    assert checks[("marts/item_flow", "row_count_stable")] is True
    assert checks[("core/status_map", "statuses_mapped")] is False
    repo = data["repositoriesOrError"]["nodes"][0]
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert schedules["nightly"]["cronSchedule"] == "0 2 * * *"
    assert schedules["nightly"]["executionTimezone"] == "UTC"
    assert "flowlens_automation" in {s["name"] for s in repo["sensors"]}


def test_the_sensor_makes_the_discovered_partitions_and_launches_the_extracts():
    """After `sources`: dynamic partitions through the sensor's `dynamic_partitions_requests` (the asset changes
    nothing in the instance), runs of the site streams and of each extract over all its partitions, carrying
    the discovery run's flowlens tags; nothing again until the next `sources`."""
    from pipelines.schedules import source_partitions

    with dg.instance_for_test() as instance:
        assert isinstance(source_partitions(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        instance.add_dynamic_partitions("jira_projects", ["OLD", "PAY"])
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "sources", metadata={"found": dg.MetadataValue.json({"jira": ["PAY", "WEB"], "github": ["acme/api"]})}))
        result = source_partitions(dg.build_sensor_context(instance=instance))
        requests = {(type(r).__name__, r.partitions_def_name, tuple(r.partition_keys))
                    for r in result.dynamic_partitions_requests}
        assert requests == {("AddDynamicPartitionsRequest", "jira_projects", ("WEB",)),
                            ("DeleteDynamicPartitionsRequest", "jira_projects", ("OLD",)),
                            ("AddDynamicPartitionsRequest", "github_repositories", ("acme/api",))}
        runs = [(r.job_name, r.tags.get("dagster/asset_partition_range_start"),
                 r.tags.get("dagster/asset_partition_range_end")) for r in result.run_requests]
        assert runs == [("sites", None, None), ("extract_jira", "PAY", "WEB"),
                        ("extract_github", "acme/api", "acme/api")]
        again = source_partitions(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert isinstance(again, dg.SkipReason)

        @dg.asset(name="sources")
        def discovered_by_flowlens_run() -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"found": dg.MetadataValue.json({"jira": ["NEW"]})})

        assert dg.materialize([discovered_by_flowlens_run], instance=instance,
                              tags={"flowlens/trigger": "flowlens run"}).success
        left = source_partitions(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert not left.run_requests and not left.dynamic_partitions_requests  # flowlens run runs them itself
        assert int(left.cursor) > int(result.cursor)


def test_automation_carries_the_nightly_run_downstream():
    """The automation sensor leaves discovery and the extracts to the schedule and the sensor; once they are done
    (none in progress), one tick requests load and everything downstream (one backfill, in dependency order)."""
    from pipelines.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("jira_projects", ["PAY"])
        instance.add_dynamic_partitions("github_repositories", ["acme/api"])
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert not {r.key.to_user_string() for r in result.results if r.true_subset.size}
        instance.report_runless_asset_event(dg.AssetMaterialization("sources"))
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert not {r.key.to_user_string() for r in result.results if r.true_subset.size}  # the sensor's part
        for key, partition in (("jira_site", None), ("github_site", None), ("jira_extract", "PAY"),
                               ("github_extract", "acme/api")):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        requested = {r.key.to_user_string() for r in result.results if r.true_subset.size}
        assert {"load", "marts/item_flow", "published_warehouse", "report"} <= requested, requested
        assert not requested & {"sources", "jira_site", "github_site", "jira_extract", "github_extract"}
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert not {r.key.to_user_string() for r in result.results if r.true_subset.size}  # requested once


def test_loading_the_code_location_leaves_the_warning_filters_alone():
    """Importing flowlens must not silence Dagster's warnings for the whole process (a user's own code too);
    the libraries are imported first: what they set on import is theirs."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import warnings\nimport dagster, duckdb, requests, jira\nbefore = list(warnings.filters)\n"
            "import pipelines.definitions\n"
            "added = [f for f in warnings.filters if f not in before]\nprint(added)\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]", out
