"""The operator's pages in the Airflow UI (yilian.operator_ui): data quality, GX Data Docs, dbt
docs and the run report, each a nav entry under "Yilian", behind Airflow's own login."""

from __future__ import annotations

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import requires_authenticated
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends

from yilian.operator_ui import EXTERNAL_VIEWS, URL_PREFIX, create_app


class YilianOperatorUI(AirflowPlugin):
    name = "yilian_operator_ui"
    fastapi_apps = [
        {
            "name": "yilian operator pages",
            "app": create_app(
                dependencies=[Depends(requires_authenticated())],
                login_url=lambda next_url: get_auth_manager().get_url_login(next_url=next_url),
            ),
            "url_prefix": URL_PREFIX,
        }
    ]
    external_views = EXTERNAL_VIEWS
