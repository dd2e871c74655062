"""The imaging cloud (医学影像云平台): FHIR R4 over HTTPS, ImagingStudy + DiagnosticReport.

Connection `yilian_imaging` (host, port, schema → base URL; password = bearer token). Searches
both resource types with `_lastUpdated` in `[ds, ds+1)` (+08:00), follows `link[next]` verbatim
until the Bundle has no next page, and flattens each resource to the columns of
`raw.imaging__*`. A server whose `next` points to a page already fetched, or that serves more
pages than its Bundle's `total` allows, would be followed forever: the search stops and fails
naming the URL and what repeated, before anything is staged. The API is allowed to fail for a
while (429 with Retry-After, 5xx, dropped connections): urllib3's Retry re-sends each request
with exponential back-off, honouring Retry-After, and when it gives up the error names the
source, day, URL and last status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from yilian.sources.base import ExtractError, Lookup, Option, Source, TableSpec, columns
from yilian.sources.connections import connection

if TYPE_CHECKING:
    import pandas as pd
    import requests

CONN_ID = "yilian_imaging"
TOKEN_ENV = "YILIAN_IMAGING_TOKEN"
EXT = "https://yilian.example/fhir/StructureDefinition/"
RETRYABLE = (429, 500, 502, 503, 504)
ATTEMPTS = 6
MAX_WAIT_SECONDS = 60.0
TIMEOUT_SECONDS = 30.0
LAST_UPDATED = ("last_updated", "timestamp", "FHIR meta.lastUpdated (watermark), local time.")


class ImagingApiError(ExtractError):
    """The imaging API refused the request, or kept failing after every retry."""


class PaginationError(ImagingApiError):
    """The API's paging does not end: a repeated page, or more pages than its `total` allows."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    token: str


def endpoint() -> Endpoint:
    """Base URL and bearer token from connection `yilian_imaging` (the token may also come from
    YILIAN_IMAGING_TOKEN when the connection has no password)."""
    conn = connection(CONN_ID)
    if conn is None:
        raise ExtractError(
            f"imaging: no Airflow connection {CONN_ID!r}; define it (host, port, schema, "
            "password = bearer token)"
        )
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
    port = f":{conn.port}" if conn.port else ""
    schema = (conn.schema or "fhir").strip("/")
    token = conn.password or os.environ.get(TOKEN_ENV, "")
    return Endpoint(f"{scheme}://{conn.host}{port}/{schema}", token)


def _session(token: str, backoff: float) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=ATTEMPTS - 1,
        backoff_factor=backoff,
        backoff_max=MAX_WAIT_SECONDS,
        status_forcelist=RETRYABLE,
        allowed_methods=["GET"],
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back, so the error can quote it
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept"] = "application/fhir+json"
    return session


def _get(
    session: requests.Session, url: str, ds: date, params: dict[str, Any] | None
) -> dict[str, Any]:
    import requests

    try:
        resp = session.get(url, params=params, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ImagingApiError(
            f"imaging {ds}: GET {url} failed {ATTEMPTS} times; last error "
            f"{type(exc).__name__}. The API is down; rerun the task when it recovers."
        ) from exc
    if resp.status_code == 200:
        return resp.json()
    if resp.status_code in RETRYABLE:
        raise ImagingApiError(
            f"imaging {ds}: GET {resp.url} failed {ATTEMPTS} times; last status HTTP "
            f"{resp.status_code}. The API is down or throttling; rerun the task when it recovers."
        )
    raise ImagingApiError(
        f"imaging {ds}: GET {resp.url} answered HTTP {resp.status_code}: {resp.text[:200]}"
    )


def _next_url(bundle: dict[str, Any]) -> str | None:
    return next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)


def _page_bound(total: Any, first_page: int, page_size: int) -> int | None:
    """Most pages a search may take: the Bundle's `total` in pages of the size the server
    answers (it may cap `_count`), plus one for resources updated while paging. None when the
    server states no total: then only a repeated page stops the loop."""
    if not isinstance(total, int) or total < 0:
        return None
    per_page = max(1, min(page_size, first_page or page_size))
    return -(-total // per_page) + 1


def search(
    api: Endpoint, resource: str, ds: date, page_size: int, backoff: float
) -> list[dict[str, Any]]:
    """Every resource of type `resource` last updated on `ds`, across all pages.

    Fails (PaginationError) when `link[next]` names a page already fetched, when a page holds
    only resources already seen, or past the page bound of the first Bundle's `total`.
    """
    lo, hi = (
        ds.isoformat() + "T00:00:00+08:00",
        (ds + timedelta(days=1)).isoformat() + "T00:00:00+08:00",
    )
    url: str | None = f"{api.base_url}/{resource}"
    params: dict[str, Any] | None = {"_lastUpdated": [f"ge{lo}", f"lt{hi}"], "_count": page_size}
    resources: list[dict[str, Any]] = []
    import requests

    fetched: dict[str, int] = {}  # url of each page followed -> its page number
    seen: set[str] = set()
    bound: int | None = None
    with _session(api.token, backoff) as session:
        while url:
            if url in fetched:
                raise PaginationError(
                    f"imaging {ds}: the {resource} search loops: link[next] of page "
                    f"{len(fetched)} is {url}, which is page {fetched[url]}, already fetched. "
                    "Nothing was extracted; report the looping cursor to the imaging cloud."
                )
            page = len(fetched) + 1
            bundle = _get(session, url, ds, params)
            entries = [e["resource"] for e in bundle.get("entry", [])]
            ids = {f"{r.get('resourceType')}/{r.get('id')}" for r in entries}
            if page > 1 and entries and ids <= seen:
                raise PaginationError(
                    f"imaging {ds}: the {resource} search loops: page {page} ({url}) repeats "
                    f"{len(ids)} resources already fetched on earlier pages. Nothing was "
                    "extracted; report the looping cursor to the imaging cloud."
                )
            if page == 1:
                bound = _page_bound(bundle.get("total"), len(entries), page_size)
            elif bound is not None and page > bound:
                raise PaginationError(
                    f"imaging {ds}: the {resource} search does not end: page {page} ({url}) "
                    f"is past the {bound} pages its total of {bundle.get('total')} resources "
                    "allows. Nothing was extracted; report the paging to the imaging cloud."
                )
            fetched[requests.Request("GET", url, params=params).prepare().url or url] = page
            seen |= ids
            resources.extend(entries)
            url, params = _next_url(bundle), None
    return resources


def _ext(resource: dict[str, Any], name: str, kind: str) -> Any:
    for ext in resource.get("extension", []):
        if ext.get("url") == EXT + name:
            value = ext.get(kind)
            return value.get("value") if isinstance(value, dict) else value
    return None


def flatten_study(r: dict[str, Any]) -> dict[str, Any]:
    subject = r.get("subject", {})
    modality = (r.get("modality") or [{}])[0]
    return {
        "study_id": r["id"],
        "requesting_facility_code": _ext(r, "requesting-facility", "valueIdentifier"),
        "patient_id_no": subject.get("identifier", {}).get("value"),
        "patient_name": subject.get("display"),
        "modality": modality.get("code"),
        "number_of_series": r.get("numberOfSeries"),
        "exam_at": r.get("started"),
        "uploaded_at": _ext(r, "uploaded-at", "valueDateTime"),
        "read_requested_at": _ext(r, "read-requested-at", "valueDateTime"),
        "last_updated": r.get("meta", {}).get("lastUpdated"),
    }


def flatten_report(r: dict[str, Any]) -> dict[str, Any]:
    study = (r.get("imagingStudy") or [{}])[0].get("reference", "")
    performer = (r.get("performer") or [{}])[0].get("identifier", {})
    return {
        "report_id": r["id"],
        "study_id": study.removeprefix("ImagingStudy/") or None,
        "reading_facility_code": performer.get("value"),
        "status": r.get("status"),
        "issued_at": r.get("issued"),
        "exam_at": r.get("effectiveDateTime"),
        "conclusion": r.get("conclusion"),
        "last_updated": r.get("meta", {}).get("lastUpdated"),
    }


class ImagingCloud(Source):
    name = "imaging"
    title = "imaging cloud (FHIR R4 ImagingStudy + DiagnosticReport)"
    description = (
        "Flattened by the imaging DAG; `ds` is the business day whose "
        "`_lastUpdated` window held the resource."
    )
    loaded_at_field = "last_updated"
    options = {
        "page_size": Option(
            500, "integer", "FHIR `_count`: resources per page.", minimum=1, maximum=1000
        ),
        "retry_backoff": Option(
            1.0,
            "number",
            "First wait (seconds) before retrying a failed API request; doubles each time "
            "(a Retry-After header wins).",
            minimum=0,
        ),
    }
    tables = (
        TableSpec(
            "imaging",
            "studies",
            "ImagingStudy",
            "One row per remote-read study version (ImagingStudy).",
            ("study_id",),
            columns(
                ("study_id", "string", "ImagingStudy id."),
                ("requesting_facility_code", "string", "Facility that requested the read."),
                "patient",
                ("modality", "string", "DICOM modality: DX, CT, MR, US, ECG or SM (pathology)."),
                ("number_of_series", "int", "Series in the study."),
                ("exam_at", "timestamp", "Exam time (started)."),
                ("uploaded_at", "timestamp", "When the images reached the cloud."),
                ("read_requested_at", "timestamp", "When the remote read was requested."),
                LAST_UPDATED,
            ),
            patient_event_at="exam_at",
        ),
        TableSpec(
            "imaging",
            "reports",
            "DiagnosticReport",
            "Signed reports (DiagnosticReport); exists once the report is issued.",
            ("report_id",),
            columns(
                ("report_id", "string", "DiagnosticReport id."),
                ("study_id", "string", "The study the report reads."),
                ("reading_facility_code", "string", "Facility whose radiologist signed."),
                ("status", "string", "FHIR report status (final)."),
                ("issued_at", "timestamp", "When the report was signed."),
                ("exam_at", "timestamp", "Exam time (effectiveDateTime)."),
                ("conclusion", "string", "The report's conclusion."),
                LAST_UPDATED,
            ),
            lookups=(
                Lookup("_study_read_requested_at", "study_id", "studies", "read_requested_at"),
            ),
        ),
    )

    def extract(
        self, ds: date, page_size: int = 500, retry_backoff: float = 1.0
    ) -> dict[str, pd.DataFrame]:
        """Studies and reports last updated on `ds`, flattened and typed, PII still inside."""
        import pandas as pd

        from yilian.sources.frames import empty, typed

        api = endpoint()
        where = f"imaging {ds}"
        out: dict[str, pd.DataFrame] = {}
        for spec, flatten in zip(self.tables, (flatten_study, flatten_report), strict=True):
            found = search(api, spec.source_table, ds, page_size, retry_backoff)
            rows = [flatten(r) for r in found]
            frame = typed(pd.DataFrame.from_records(rows), spec, where) if rows else None
            out[spec.table] = (frame if frame is not None else empty(spec, where)).sort_values(
                list(spec.key), ignore_index=True
            )
        return out
