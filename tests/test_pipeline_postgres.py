"""docs/postgres.dagster.yaml against a real, throwaway PostgreSQL cluster (Debian's postgresql package).

Under CI=true a missing PostgreSQL is a failure (the CI script installs it), elsewhere a skip.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    pg = _pg_bin()
    if pg is None:
        msg = "PostgreSQL is not installed (need /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    base = tmp_path
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as an unprivileged user, outside tmp_path (0700)
        user = "postgres" if _has_user("postgres") else "nobody"
        prefix = ["runuser", "-u", user, "--"]
        base = Path(tempfile.mkdtemp(prefix="flowlens-pg-"))
        base.chmod(0o755)
        (base / "pgdata").mkdir()
        shutil.chown(base / "pgdata", user)
    data = base / "pgdata"
    run = lambda *a: subprocess.run([*prefix, *a], check=True, capture_output=True, text=True, timeout=120)
    run(str(pg / "initdb"), "-D", str(data), "-U", "flowlens", "--auth=trust", "-E", "UTF8")
    run(str(pg / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "flowlens", "dagster")
        yield {"DAGSTER_PG_USERNAME": "flowlens", "DAGSTER_PG_PASSWORD": "unused-trust-auth",
               "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PORT": str(port)}
    finally:
        subprocess.run([*prefix, str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, check=False)
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_postgres_instance_storage_holds_runs(tmp_path, postgres, monkeypatch):
    import dagster as dg
    import psycopg2

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "docs" / "postgres.dagster.yaml", home / "dagster.yaml")
    for k, v in (postgres | {"DAGSTER_HOME": str(home), "DAGSTER_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
                             "FLOWLENS_HOME": str(tmp_path / "var")}).items():
        monkeypatch.setenv(k, v)
    for k in ("JIRA_URL", "GITHUB_TOKEN", "FLOWLENS_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions("jira_projects", ["PAY", "WEB"])
        assert instance.get_dynamic_partitions("jira_projects") == ["PAY", "WEB"]
        # The discover job fails here (no credentials): a real run, recorded with its failure in Postgres.
        result = defs.resolve_job_def("discover").execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        run_id = result.run_id
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    con = psycopg2.connect(host="127.0.0.1", port=int(postgres["DAGSTER_PG_PORT"]), user="flowlens",
                           dbname="dagster")
    try:
        cur = con.cursor()
        cur.execute("select count(*) from runs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("select count(*) from event_logs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 3
    finally:
        con.close()
