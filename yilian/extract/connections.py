"""Where each source lives: Airflow connections, falling back to the embedded simulator.

Switching from the simulator to a real system is a change of Airflow connection, not of code:
`yilian_hospital` (SQLAlchemy URL in the connection's URI/host), `yilian_imaging`
(host/port/schema → base URL; password = bearer token), `yilian_prescriptions_drop`
(extra `{"path": ...}`). Undefined connections mean "the simulator in settings.paths()".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yilian.settings import paths

HOSPITAL_CONN_ID = "yilian_hospital"
IMAGING_CONN_ID = "yilian_imaging"
DROP_CONN_ID = "yilian_prescriptions_drop"
IMAGING_TOKEN_ENV = "YILIAN_IMAGING_TOKEN"
IMAGING_URL_ENV = "YILIAN_IMAGING_URL"


def connection(conn_id: str) -> Any | None:
    """The Airflow connection `conn_id`, or None when it is not defined.

    Outside a task (benchmark, CLI) the SDK resolves connections from `AIRFLOW_CONN_*`
    variables and secrets backends; "not defined" there is also None.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def hospital_url() -> str:
    conn = connection(HOSPITAL_CONN_ID)
    if conn is None:
        return f"sqlite:///{paths().hospital_db}"
    if conn.conn_type in ("sqlite",):
        return f"sqlite:///{conn.host}"
    return conn.get_uri()


@dataclass(frozen=True)
class ImagingEndpoint:
    base_url: str
    token: str


def imaging_endpoint() -> ImagingEndpoint:
    """Base URL and bearer token; without a connection, the simulator's server (env)."""
    conn = connection(IMAGING_CONN_ID)
    token = os.environ.get(IMAGING_TOKEN_ENV, "")
    if conn is not None:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
        port = f":{conn.port}" if conn.port else ""
        schema = (conn.schema or "fhir").strip("/")
        return ImagingEndpoint(f"{scheme}://{conn.host}{port}/{schema}", conn.password or token)
    url = os.environ.get(IMAGING_URL_ENV)
    if not url:
        raise RuntimeError(
            f"imaging: no Airflow connection {IMAGING_CONN_ID!r} and no {IMAGING_URL_ENV}; "
            "define the connection (host, port, schema, password = token)"
        )
    return ImagingEndpoint(url.rstrip("/"), token)


def prescription_drop() -> Path:
    conn = connection(DROP_CONN_ID)
    if conn is not None and conn.extra_dejson.get("path"):
        return Path(conn.extra_dejson["path"])
    return paths().prescription_drop
