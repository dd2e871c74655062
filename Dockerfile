# The yilian image for the scale-out deployment (docker-compose.yml): Airflow, dbt, GX and the
# simulator in one locked environment.
FROM python:3.11-slim
ENV UV_PROJECT_ENVIRONMENT=/opt/yilian/.venv PATH=/opt/yilian/.venv/bin:$PATH \
    DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=False GX_ANALYTICS_ENABLED=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
WORKDIR /opt/yilian
RUN pip install --no-cache-dir "uv>=0.9,<1"
COPY pyproject.toml uv.lock README.md ./
COPY yilian ./yilian
RUN uv sync --frozen --no-dev --extra scale-out
COPY . .
