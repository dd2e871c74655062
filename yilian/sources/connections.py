"""Where a source lives: an Airflow connection, else the embedded simulated region.

Switching from the simulator to a real system is a change of Airflow connection, not of code;
each source module says which connection it reads and what its embedded default is.
"""

from __future__ import annotations

from typing import Any


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
