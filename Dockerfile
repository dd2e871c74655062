# The yilian image for the scale-out deployment (docker-compose.yml): Airflow, dbt and GX in one
# locked environment. The `simulator` stage adds the simulated region (yilian-sim) for the
# imaging-cloud service; the pipeline's own image never contains it.
FROM python:3.11-slim AS product
ENV UV_PROJECT_ENVIRONMENT=/opt/yilian/.venv PATH=/opt/yilian/.venv/bin:$PATH \
    DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=False GX_ANALYTICS_ENABLED=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
WORKDIR /opt/yilian
RUN pip install --no-cache-dir "uv>=0.9,<1"
COPY pyproject.toml uv.lock README.md ./
COPY simulator/pyproject.toml simulator/
COPY yilian ./yilian
RUN uv sync --frozen --no-dev --extra scale-out --compile-bytecode
COPY dags ./dags
COPY plugins ./plugins
COPY dbt_project ./dbt_project
COPY expectations ./expectations

FROM product AS simulator
COPY simulator ./simulator
RUN uv sync --frozen --no-dev --package yilian-sim --inexact
