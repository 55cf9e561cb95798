"""Dagster's retry policy on the extract steps (issue 15): a damaged answer (HTML with 200, malformed JSON), a 4xx
or a user mistake fails the step once, with its cause as the one line; only a transient fault that outlived the
client's own retries is handed to the policy. Run through Dagster (an instance in a temporary folder) against the
sandbox: an exception Dagster sees raw would be retried three times, 5 s and more apart."""

from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets.extract import _extract_many, github_extract, github_site, jira_site
from pipelines.resources import default_resources
from sandbox.generator import config_toml, generate
from sandbox.server import Sandbox

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def store():
    return generate("small", 1)


def unconfigured(store) -> str:
    """The generated flowlens.toml without its [[teams]] and [[identities]]: github_site then asks for the teams."""
    blocks = config_toml(store, "cloud").split("\n\n")
    return "\n\n".join(b for b in blocks if not b.lstrip().startswith(("[[teams]]", "[[identities]]")))


def materialize(asset: dg.AssetsDefinition, home: Path, config: Path, partition: str | None = None):
    instance = dg.DagsterInstance.ephemeral(tempdir=str(home / "dagster"))
    if partition:
        instance.add_dynamic_partitions(asset.partitions_def.name, [partition])
    result = dg.materialize([asset], instance=instance, partition_key=partition, raise_on_error=False,
                            resources=default_resources(str(config), str(home)))
    kinds = [e.event_type_value for e in result.all_events]
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return kinds, failure.step_failure_data.user_failure_data, failure.step_failure_data.error


def sandbox_env(monkeypatch, sb: Sandbox) -> None:
    for name in ("JIRA_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN", "FLOWLENS_CONFIG", "FLOWLENS_AS_OF"):
        monkeypatch.delenv(name, raising=False)
    for name, value in sb.env().items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("kind", ["html_200", "malformed_json"])
@pytest.mark.parametrize("step,route", [(github_site, "github.graphql"), (jira_site, "jira.status"),
                                        (github_extract, "github.graphql")])
def test_a_damaged_answer_fails_the_step_once(tmp_path, monkeypatch, store, step, route, kind):
    config = tmp_path / "flowlens.toml"
    config.write_text(unconfigured(store))
    with Sandbox(store) as sb:
        sandbox_env(monkeypatch, sb)
        sb.app.set_faults(rate=1.0, kinds=[kind], routes=[route])
        partition = min(r.full_name for r in store.github_repos if not r.archived) if step is github_extract else None
        kinds, _, error = materialize(step, tmp_path / "home", config, partition)
        asked = sb.app.stats.requests.get(route, 0)
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds.count("STEP_FAILURE") == 1, kinds
    assert asked == 1, asked  # the damaged answer is asked for once: neither the client nor Dagster asks again
    assert error.cls_name == "Failure" and "not JSON" in error.message and "Exceeded max_retries" not in error.message
    assert "\n" not in error.message.strip(), error.message


def test_a_source_that_is_not_configured_fails_the_partition_once(tmp_path, monkeypatch, store):
    """An extract partition of GitHub without GITHUB_TOKEN: one line naming the variable, not retried."""
    config = tmp_path / "flowlens.toml"
    config.write_text(config_toml(store, "cloud"))
    for name in ("GITHUB_TOKEN", "FLOWLENS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    kinds, _, error = materialize(github_extract, tmp_path / "home", config, "acme/pay")
    assert "STEP_UP_FOR_RETRY" not in kinds and kinds.count("STEP_FAILURE") == 1, kinds
    assert "GITHUB_TOKEN is not set" in error.message


@pytest.mark.parametrize("failed,retried", [(None, False), (RuntimeError("a bug, not a fault"), False)])
def test_a_partition_the_connector_left_out_is_not_retried(failed, retried):
    """Only a ConnectorError that says it may pass is retried; a partition without a result (or with an error no
    connector raises) would fail the same way again."""
    ok = type("R", (), {"records": {"issues": 1}, "pages": {"issues": 1}, "requests": 2})()
    with dg.build_asset_context() as context, pytest.raises(dg.Failure) as e:
        _extract_many(context, "jira", ["PAY", "OPS"], lambda keys, report: {"PAY": ok, "OPS": failed})
    assert e.value.allow_retries is retried
