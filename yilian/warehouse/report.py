"""The run report: a KPI summary per county, every national indicator beside its target, the
data quality of each source and day, and charts, as one self-contained HTML page.

The figures come from the published, read-only marts, exactly as an analyst's BI tool would
see them: the indicators through the semantic layer (re-aggregated from numerator and
denominator), their targets from `marts.dim_indicator_target`. The data-quality rows are the
audit tables' (the loads' quality snapshot), passed in by the caller.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

COUNTY_SUMMARY_SQL = """
with interop as (
    select
        county_code,
        sum(facilities_delivering) as facilities_delivering,
        sum(facilities_in_scope) as facilities_in_scope,
        sum(prescriptions_flowed_out) as prescriptions_flowed_out,
        sum(prescriptions) as prescriptions
    from marts.mart_interoperability_daily
    group by county_code
),
monthly as (
    select
        county_code,
        sum(visits) as visits,
        sum(primary_care_visits) as primary_care_visits,
        sum(resident_visits_in_county) as resident_visits_in_county,
        sum(resident_visits) as resident_visits,
        sum(upward_referrals) as upward_referrals,
        sum(downward_referrals) as downward_referrals,
        sum(remote_reads) as remote_reads
    from marts.mart_alliance_kpis_monthly
    group by county_code
)
select
    region.county_name as county,
    region.county_name_en as county_en,
    monthly.visits,
    monthly.primary_care_visits / nullif(monthly.visits, 0) as primary_care_share,
    monthly.resident_visits_in_county / nullif(monthly.resident_visits, 0) as in_county_rate,
    monthly.upward_referrals as referrals_up,
    monthly.downward_referrals as referrals_down,
    monthly.remote_reads,
    interop.facilities_delivering / nullif(interop.facilities_in_scope, 0) as connectivity,
    interop.prescriptions_flowed_out / nullif(interop.prescriptions, 0) as outflow_rate
from monthly
join marts.dim_region as region using (county_code)
left join interop using (county_code)
order by region.county_code
"""


@dataclass(frozen=True)
class Report:
    county_summary: pd.DataFrame
    indicators: pd.DataFrame
    html_path: Path


def county_summary(published_db: Path) -> pd.DataFrame:
    with duckdb.connect(str(published_db), read_only=True) as con:
        summary = con.execute(COUNTY_SUMMARY_SQL).df()
    counts = ["visits", "referrals_up", "referrals_down", "remote_reads"]
    summary[counts] = summary[counts].astype("Int64")
    return summary


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a terminal table, rates as percentages."""
    shown = summary.copy()
    for column in ("primary_care_share", "in_county_rate", "connectivity", "outflow_rate"):
        shown[column] = shown[column].map(lambda v: "—" if pd.isna(v) else f"{v:.1%}")
    return shown.to_string(index=False)


def _target_text(metric: str, targets: pd.DataFrame) -> tuple[str, str]:
    """(the target, the reference values) of one indicator, as people read them."""
    from yilian.warehouse.semantic import format_value

    mine = targets[targets.metric_name == metric]
    bound = {"at_least": "≥ ", "at_most": "≤ "}
    target = "; ".join(
        f"{bound.get(t.comparison, '')}{format_value(metric, t.value)} ({t.place_year})"
        for t in mine[mine.kind == "target"].itertuples()
    )
    references = "; ".join(
        f"{format_value(metric, t.value)} ({t.place_year})"
        for t in mine[mine.kind == "reference"].itertuples()
    )
    return target or "—", references or "—"


def _meets(value: float | None, metric: str, targets: pd.DataFrame) -> str:
    mine = targets[(targets.metric_name == metric) & (targets.kind == "target")]
    if mine.empty or value is None or pd.isna(value):
        return ""
    ok = all(
        value >= t.value if t.comparison == "at_least" else value <= t.value
        for t in mine.itertuples()
    )
    return "meets" if ok else "below" if mine.comparison.iloc[0] == "at_least" else "above"


def indicator_table(published_db: Path, target_path: Path | str | None = None) -> pd.DataFrame:
    """Every national indicator over the whole run, for the region and each county, beside its
    target and the seed reports' reference values."""
    from yilian.warehouse.semantic import IN_REGION, format_value, indicators, query_metrics

    catalogue = indicators(target_path)
    names = [i["name"] for i in catalogue]
    kwargs = {"database": published_db, "target_path": target_path}
    region = query_metrics(names, [], where=[IN_REGION], **kwargs).iloc[0]
    by_county = query_metrics(names, ["county"], **kwargs).set_index("county")
    with duckdb.connect(str(published_db), read_only=True) as con:
        targets = con.execute("select * from marts.dim_indicator_target").df()
        counties = con.execute(
            "select county_code, county_name_en from marts.dim_region order by county_code"
        ).fetchall()
    rows = []
    for item in catalogue:
        name = item["name"]
        target, references = _target_text(name, targets)
        row: dict[str, Any] = {"indicator": f"{item['name_zh']} {item['name_en']}"}
        row["region"] = format_value(name, region[name])
        for code, county in counties:
            value = by_county[name].get(code) if code in by_county.index else None
            row[county] = format_value(name, value)
        row |= {
            "national target": target,
            "region vs target": _meets(region[name], name, targets),
            "reported elsewhere": references,
            "metric": name,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _quality_html(days: Sequence[Mapping[str, Any]]) -> str:
    """Per source and business day: rows extracted, loaded, quarantined, the top reasons."""
    if not days:
        return "<p>No loads recorded.</p>"
    head = (
        "<tr><th>source</th><th>business day</th><th>outcome</th><th>extracted</th>"
        "<th>loaded</th><th>quarantined</th><th>top quarantine reasons</th></tr>"
    )
    body = []
    for day in days:
        reasons = "<br>".join(
            f"{html.escape(r['rule'])}: {r['rows']} (e.g. {html.escape(str(r['example']))})"
            for r in day["reasons"]
        ) or html.escape(day["blocked_message"] or "—")
        body.append(
            f"<tr><td>{html.escape(day['source'])}</td><td>{day['ds']}</td>"
            f"<td>{html.escape(day['outcome'])}</td><td>{day['rows_extracted']:,}</td>"
            f"<td>{day['rows_loaded']:,}</td><td>{day['rows_quarantined']:,}</td>"
            f'<td style="text-align:left">{reasons}</td></tr>'
        )
    return f"<table>{head}{''.join(body)}</table>"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _charts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: list[tuple[str, str]] = []

    flows = con.execute(
        "select date, direction, sum(referrals) as referrals from marts.mart_referrals_daily "
        "group by all order by date"
    ).df()
    if not flows.empty:
        pivot = flows.pivot_table(
            index="date", columns="direction", values="referrals", fill_value=0
        )
        figure, axis = plt.subplots(figsize=(8, 3.5))
        pivot.index = [day.strftime("%m-%d") for day in pivot.index]
        pivot.plot.bar(stacked=True, ax=axis, rot=0)
        axis.set_ylabel("referral orders")
        axis.set_title("Referral flows by direction")
        charts.append(("Referral flows by direction", _png(figure)))
        plt.close(figure)

    turnaround = con.execute(
        "select modality, quantile_cont(median_turnaround_minutes, 0.5) as median_minutes, "
        "quantile_cont(p90_turnaround_minutes, 0.5) as p90_minutes "
        "from marts.mart_remote_diagnosis_daily group by modality order by modality"
    ).df()
    if not turnaround.empty:
        figure, axis = plt.subplots(figsize=(8, 3.5))
        turnaround.set_index("modality").plot.bar(ax=axis, logy=True, rot=0)
        axis.set_ylabel("minutes (log scale)")
        axis.set_title("Remote-read turnaround: median and p90 (median over days)")
        charts.append(("Remote-read turnaround", _png(figure)))
        plt.close(figure)

    connectivity = con.execute(
        "select date, county_name_en, connectivity_rate from marts.mart_interoperability_daily "
        "join marts.dim_region using (county_code) order by date"
    ).df()
    if not connectivity.empty:
        pivot = connectivity.pivot_table(
            index="date", columns="county_name_en", values="connectivity_rate"
        )
        figure, axis = plt.subplots(figsize=(8, 3.5))
        pivot.plot(ax=axis, marker="o")
        axis.set_ylabel("connectivity rate")
        axis.set_ylim(0.8, 1.0)
        axis.set_title("Connectivity (facilities delivering their daily feed)")
        charts.append(("Connectivity over the days", _png(figure)))
        plt.close(figure)
    return charts


def write_report(
    published_db: Path,
    report_dir: Path,
    title: str,
    *,
    quality: Sequence[Mapping[str, Any]] = (),
    target_path: Path | str | None = None,
) -> Report:
    """Write report_dir/run_report.html from the published marts and return the summary.

    `quality`: one mapping per source and business day (`operator_ui.day_summary`'s rows).
    """
    import matplotlib

    matplotlib.rcParams["font.family"] = ["DejaVu Sans"]
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = county_summary(published_db)
    indicators = indicator_table(published_db, target_path)
    with duckdb.connect(str(published_db), read_only=True) as con:
        charts = _charts(con)
    sections = "\n".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{png}">'
        for name, png in charts
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>KPIs per county</h2>
{summary.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")}
<h2>National indicators and their targets</h2>
<p>Over the whole run, re-aggregated from numerator and denominator (semantic layer); targets
and reference values from the seed reports (docs/INDICATORS.md).</p>
{indicators.to_html(index=False)}
<h2>Data quality per source and business day</h2>
{_quality_html(quality)}
{sections}
<p>Source: the published marts <code>{html.escape(str(published_db))}</code>.</p>
</body></html>
"""
    html_path = report_dir / "run_report.html"
    html_path.write_text(page, encoding="utf-8")
    return Report(summary, indicators, html_path)
