"""The operator's pages in the Airflow UI: data quality per source and day, the GX Data Docs of
every validation, the dbt docs and the latest run report (plugins/yilian_operator_ui.py mounts
this app in the api-server and puts the pages in the UI's navigation).

Nothing here opens the warehouse: DuckDB has one writer per file and a reader holding it makes
the nightly writers fail, so the data-quality page reads the snapshot the writers export after
each commit (`warehouse.raw.export_quality_snapshot`). Nothing is fetched from the internet
either: GX's Data Docs pages name CDN assets, which are served from the copies vendored under
`yilian/ui_assets/vendor/` (their rewrite is `offline_html`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from yilian.settings import paths
from yilian.warehouse.raw import SNAPSHOT_QUERIES, quality_dir

URL_PREFIX = "/yilian"
ASSETS_DIR = Path(__file__).resolve().parent / "ui_assets"
VENDOR_DIR = ASSETS_DIR / "vendor"
TOP_REASONS = 3
#: Nav entries (Airflow's `external_views`): href relative to the UI's base URL, no slash first.
PAGES = (
    ("Data quality", "quality", "yilian-quality"),
    ("GX Data Docs", "data-docs/index.html", "yilian-data-docs"),
    ("dbt docs", "dbt-docs", "yilian-dbt-docs"),
    ("Run report", "run-report", "yilian-run-report"),
)
EXTERNAL_VIEWS = [
    {
        "name": name,
        "href": f"{URL_PREFIX.lstrip('/')}/{path}",
        "url_route": route,
        "destination": "nav",
        "category": "Yilian",
    }
    for name, path, route in PAGES
]
#: CDN URL (as GX 1.x's Data Docs templates write it) -> the vendored copy, under vendor/.
CDN_ASSETS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap@4.3.1/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap@4.3.1/dist/js/bootstrap.min.js"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js@1.12.9/dist/umd/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (  # noqa: E501
        "bootstrap-datepicker@1.9.0/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (  # noqa: E501
        "bootstrap-datepicker@1.9.0/dist/js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free@6.6.0/css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (  # noqa: E501
        "bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (  # noqa: E501
        "bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (  # noqa: E501
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (  # noqa: E501
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/build/vega-embed.min.js",
}
#: GX's logos on its S3 bucket: replaced by the copy every Data Docs site has in static/images.
_GX_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/[A-Za-z_-]+\.png"
    r"(\?d=[0-9TZ.]+)?"
)
_CDN = re.compile("|".join(re.escape(url) for url in sorted(CDN_ASSETS, key=len, reverse=True)))


# --- the data-quality view ---------------------------------------------------------------


def read_snapshot(directory: Path | None = None) -> dict[str, pd.DataFrame]:
    """The quality snapshot's tables (empty frames before the first load)."""
    directory = directory or quality_dir()
    out = {}
    for name in SNAPSHOT_QUERIES:
        path = directory / f"{name}.parquet"
        out[name] = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame()
    return out


def day_summary(load_runs: pd.DataFrame, rejected: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per (source, business day), newest day first: the latest run's counts summed over
    the source's tables, its outcome, what blocked it, and the top quarantine reasons."""
    if load_runs.empty:
        return []
    latest = (
        load_runs.sort_values("finished_at")
        .groupby(["source", "ds", "table_name"], as_index=False)
        .tail(1)
    )
    days = []
    for (source, ds), runs in latest.groupby(["source", "ds"], sort=False):
        blocked = runs[runs.outcome == "blocked"]
        reasons: list[dict[str, Any]] = []
        if not rejected.empty and blocked.empty:
            mine = rejected[(rejected.source == source) & (rejected.ds == ds)]
            by_rule = (
                mine.groupby("rule", as_index=False)
                .agg(rows=("rows", "sum"), example=("example_reason", "min"))
                .sort_values(["rows", "rule"], ascending=[False, True])
            )
            reasons = by_rule.head(TOP_REASONS).to_dict("records")
        days.append(
            {
                "source": source,
                "ds": pd.Timestamp(ds).date(),
                "outcome": "blocked" if len(blocked) else "loaded",
                "rows_extracted": int(runs.rows_extracted.sum()),
                "rows_loaded": int(runs.rows_loaded.sum()),
                "rows_quarantined": int(runs.rows_quarantined.sum()),
                # delivered again: a key already loaded for another day (snapshots of old
                # warehouses have no such column)
                "rows_redelivered": int(runs.get("rows_redelivered", pd.Series([0])).sum()),
                "reasons": reasons,
                "blocked_message": "; ".join(
                    f"{r.table_name}: {r.rule_failures}"
                    for r in blocked.itertuples()
                    if r.rule_failures
                ),
                "docs": [
                    (r.table_name, r.data_docs_path)
                    for r in runs.itertuples()
                    if r.data_docs_path and (blocked.empty or r.outcome == "blocked")
                ],
                "run_id": runs.run_id.iloc[-1],
                "finished_at": runs.finished_at.max(),
            }
        )
    return sorted(days, key=lambda d: (d["ds"], d["source"]), reverse=True)


def docs_href(data_docs_path: str, docs_dir: Path) -> str | None:
    """The plugin URL (relative to the quality page) of a Data Docs page, if it is in the site."""
    try:
        rel = Path(data_docs_path).resolve().relative_to(docs_dir.resolve())
    except ValueError:
        return None
    return f"data-docs/{rel.as_posix()}"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a202c; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 0.35rem 0.6rem; text-align: left;
         vertical-align: top; }}
th {{ background: #f7fafc; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.blocked td {{ background: #fff5f5; }}
.badge {{ border-radius: 0.3rem; padding: 0 0.4rem; font-size: 0.8rem; }}
.loaded {{ background: #c6f6d5; }} .blocked-b {{ background: #fed7d7; }}
ul {{ margin: 0; padding-left: 1rem; }} small {{ color: #4a5568; }}
</style></head><body><h1>{html.escape(title)}</h1>
{body}
</body></html>"""


def quality_page(directory: Path | None = None, docs_dir: Path | None = None) -> str:
    docs_dir = docs_dir or paths().data_docs_dir
    snapshot = read_snapshot(directory)
    days = day_summary(snapshot["load_runs"], snapshot["rejected_summary"])
    if not days:
        return _page("Data quality", "<p>No source day has been validated yet.</p>")
    rows = []
    for d in days:
        e = html.escape
        reasons = "".join(
            f"<li><b>{e(r['rule'])}</b> × {int(r['rows'])} <small>e.g. {e(r['example'])}</small>"
            "</li>"
            for r in d["reasons"]
        )
        links = " ".join(
            f'<a href="{e(href)}">{e(table)}</a>'
            for table, path in d["docs"]
            if (href := docs_href(path, docs_dir))
        )
        blocked = d["outcome"] == "blocked"
        badge = (
            '<span class="badge blocked-b">blocked</span>'
            if blocked
            else '<span class="badge loaded">loaded</span>'
        )
        rows.append(
            f'<tr class="{"blocked" if blocked else ""}" data-source="{e(d["source"])}" '
            f'data-ds="{d["ds"]}">'
            f"<td>{e(d['source'])}</td><td>{d['ds']}</td><td>{badge}</td>"
            f'<td class="n">{d["rows_extracted"]}</td><td class="n">{d["rows_loaded"]}</td>'
            f'<td class="n quarantined">{d["rows_quarantined"]}</td>'
            f'<td class="n redelivered">{d["rows_redelivered"]}</td>'
            f"<td>{f'<ul>{reasons}</ul>' if reasons else ''}"
            f"{e(d['blocked_message']) if blocked else ''}</td>"
            f"<td><small>{links}</small></td></tr>"
        )
    body = (
        "<p>Per source and business day, the latest run of each table (from the quality "
        "snapshot the loads write; the warehouse itself is never opened here).</p>"
        "<table><thead><tr><th>source</th><th>business day</th><th>outcome</th>"
        "<th>extracted</th><th>loaded</th><th>quarantined</th>"
        '<th title="loaded rows whose key was already loaded for another day">redelivered</th>'
        "<th>top quarantine reasons / why blocked</th><th>Data Docs</th></tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
    )
    return _page("Data quality", body)


# --- offline Data Docs -------------------------------------------------------------------


def offline_html(text: str, to_root: str) -> str:
    """A Data Docs page with its CDN assets pointed at the vendored copies and GX's S3 logos
    at the site's own copy. `to_root` is the relative URL from the page to the app's root."""
    text = _CDN.sub(lambda m: f"{to_root}vendor/{CDN_ASSETS[m.group(0)]}", text)
    return _GX_LOGO.sub(f"{to_root}data-docs/static/images/logo-long.png", text)


def _inside(root: Path, rel: str) -> Path | None:
    """`root/rel` if it is an existing file inside `root` (no `..` escapes)."""
    root = root.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


# --- the app -----------------------------------------------------------------------------


def create_app(
    dependencies: Sequence[Any] = (), login_url: Callable[[str], str] | None = None
) -> Any:
    """The FastAPI app of the operator's pages; `dependencies` guard every route (the plugin
    passes Airflow's authentication). With `login_url` (the next URL -> the login page), a
    browser that is not logged in is sent to the login page instead of a bare 401."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

    app = FastAPI(title="yilian operator pages", dependencies=list(dependencies))

    @app.exception_handler(HTTPException)
    async def to_login(request: Request, exc: HTTPException) -> Any:
        browser = "text/html" in request.headers.get("accept", "")
        if login_url and exc.status_code == 401 and browser and request.method == "GET":
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(login_url(here), status_code=303)
        return await http_exception_handler(request, exc)

    def missing(what: str, how: str) -> HTMLResponse:
        return HTMLResponse(
            _page(what, f"<p>Not built yet: {html.escape(how)}</p>"), status_code=404
        )

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        items = "".join(f'<li><a href="{path}">{name}</a></li>' for name, path, _ in PAGES)
        return _page("yilian", f"<ul>{items}</ul>")

    @app.get("/quality", response_class=HTMLResponse)
    def quality() -> str:
        return quality_page()

    @app.get("/data-docs")
    def data_docs_root() -> RedirectResponse:
        return RedirectResponse("data-docs/index.html")

    @app.get("/data-docs/{rel:path}", response_model=None)
    def data_docs(rel: str) -> Any:
        target = _inside(paths().data_docs_dir, rel or "index.html")
        if target is None:
            if rel in ("", "index.html"):
                return missing("GX Data Docs", "no source day has been validated yet")
            raise HTTPException(404, "no such Data Docs file")
        if target.suffix == ".html":
            to_root = "../" * (rel.count("/") + 1)
            return HTMLResponse(offline_html(target.read_text(encoding="utf-8"), to_root))
        return FileResponse(target)

    @app.get("/vendor/{rel:path}")
    def vendor(rel: str) -> FileResponse:
        target = _inside(VENDOR_DIR, rel)
        if target is None:
            raise HTTPException(404, "no such asset")
        return FileResponse(target)

    @app.get("/dbt-docs", response_model=None)
    def dbt_docs() -> Any:
        target = paths().reports_dir / "dbt_docs" / "static_index.html"
        if not target.is_file():
            return missing("dbt docs", "the marts DAG writes them after its first build")
        return FileResponse(target, media_type="text/html")

    @app.get("/run-report", response_model=None)
    def run_report() -> Any:
        target = paths().reports_dir / "run_report.html"
        if not target.is_file():
            return missing("Run report", "`yilian run` writes it at the end of a run")
        return FileResponse(target, media_type="text/html")

    return app
