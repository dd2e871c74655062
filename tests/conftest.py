"""Shared fixtures: an isolated Airflow + yilian environment per session, and a simulated region.

The environment is set at import, before anything imports Airflow: a temporary YILIAN_DATA_DIR
with its own AIRFLOW_HOME (and SQLite metadata DB), the project's Airflow settings (telemetry
off), a random pseudonym key and imaging token. Each test that needs sources gets its own data
directory (`region`), so tests never see each other's landing, warehouse or simulator files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="yilian-tests-"))
os.environ["YILIAN_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["YILIAN_PSEUDONYM_KEY"] = secrets.token_hex(32)
os.environ["YILIAN_IMAGING_TOKEN"] = secrets.token_urlsafe(24)

from yilian.airflow_env import airflow_env  # noqa: E402  (needs the variables above)

os.environ.update(airflow_env())  # override anything the developer exported

from yilian_sim.layout import Layout  # noqa: E402

from tests.region import Region  # noqa: E402
from yilian.settings import paths  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A migrated Airflow metadata DB with the installation's pools and our DAGs."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb
    from airflow.utils.session import create_session

    initdb()
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    from yilian.installation import POOLS

    for pool, description in POOLS.items():
        Pool.create_or_update_pool(pool, 1, description, include_deferred=False)
    dags = Path(__file__).resolve().parent.parent / "dags"
    for source in ("hospital", "imaging", "prescriptions"):
        bag = DagBag(dag_folder=str(dags / f"yilian_{source}.py"))
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, "dags-folder", None)  # what `airflow dags reserialize` does
    yield


@contextmanager
def _data_dir(root: Path) -> Iterator[Region]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YILIAN_DATA_DIR", str(root / "data"))
        yield Region(root)


@contextmanager
def _imaging_api() -> Iterator[object]:
    """The simulator's imaging API on loopback, reachable through Airflow connection
    `yilian_imaging` (an AIRFLOW_CONN_ variable, the way a deployment would define it)."""
    from yilian_sim.sources.imaging_api import ImagingServer

    token = os.environ["YILIAN_IMAGING_TOKEN"]
    Layout(paths().sim_dir).imaging_store.parent.mkdir(parents=True, exist_ok=True)
    with (
        ImagingServer(Layout(paths().sim_dir).imaging_store, token) as server,
        pytest.MonkeyPatch.context() as p,
    ):
        host, port = server.base_url.removeprefix("http://").split("/")[0].split(":")
        conn = {
            "conn_type": "http",
            "host": host,
            "port": int(port),
            "schema": "fhir",
            "password": token,
        }
        p.setenv("AIRFLOW_CONN_YILIAN_IMAGING", json.dumps(conn))
        yield server


@pytest.fixture
def region(tmp_path: Path) -> Iterator[Region]:
    """A fresh data directory for this test (sources, landing, warehouse, reports)."""
    with _data_dir(tmp_path) as fresh:
        yield fresh


@pytest.fixture
def imaging_api(region: Region) -> Iterator[object]:
    with _imaging_api() as server:
        yield server


@pytest.fixture(scope="module")
def module_region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """One region shared by a module's tests (for expensive set-ups that tests only read)."""
    with _data_dir(tmp_path_factory.mktemp("region")) as shared:
        yield shared


@pytest.fixture(scope="module")
def module_imaging_api(module_region: Region) -> Iterator[object]:
    with _imaging_api() as server:
        yield server
