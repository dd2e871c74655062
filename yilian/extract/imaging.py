"""Extract one business day from the imaging cloud's FHIR R4 API (CONTRACTS §2.2).

Searches ImagingStudy and DiagnosticReport with `_lastUpdated` in `[ds, ds+1)` (+08:00), follows
`link[next]` verbatim until the Bundle has no next page, and flattens each resource to the
columns of `raw.imaging__*`. The API is allowed to fail for a while (429 with Retry-After, 5xx,
dropped connections): every request is retried with exponential back-off, honouring Retry-After,
and when the retries run out the error names the source, day, URL and last status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import requests

from yilian.extract.connections import ImagingEndpoint
from yilian.extract.frames import ExtractError, empty, typed
from yilian.extract.tables import table

EXT = "https://yilian.example/fhir/StructureDefinition/"
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request: attempts, back-off base and cap (seconds), timeout."""

    attempts: int = 6
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: float = 30.0


class ImagingApiError(ExtractError):
    """The imaging API kept failing after every retry."""


def _get(
    session: requests.Session,
    url: str,
    ds: date,
    policy: RetryPolicy,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    last = "no answer"
    for attempt in range(policy.attempts):
        try:
            resp = session.get(url, params=params, timeout=policy.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last, wait = f"{type(exc).__name__}", policy.backoff * 2**attempt
        else:
            if resp.status_code == 200:
                return resp.json()
            last = f"HTTP {resp.status_code}"
            if resp.status_code not in RETRYABLE:
                raise ImagingApiError(
                    f"imaging {ds}: GET {resp.url} answered {last}: {resp.text[:200]}"
                )
            retry_after = resp.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else policy.backoff * 2**attempt
            url, params = resp.url, None
        if attempt + 1 < policy.attempts:
            time.sleep(min(wait, policy.max_wait))
    raise ImagingApiError(
        f"imaging {ds}: GET {url} failed {policy.attempts} times; last status {last}. "
        "The API is down or throttling; rerun the task when it recovers."
    )


def search(
    endpoint: ImagingEndpoint, resource: str, ds: date, page_size: int, policy: RetryPolicy
) -> list[dict[str, Any]]:
    """Every resource of type `resource` last updated on `ds`, across all pages."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {endpoint.token}"
    session.headers["Accept"] = "application/fhir+json"
    lo, hi = (
        ds.isoformat() + "T00:00:00+08:00",
        (ds + timedelta(days=1)).isoformat() + "T00:00:00+08:00",
    )
    url: str | None = f"{endpoint.base_url}/{resource}"
    params: dict[str, Any] | None = {"_lastUpdated": [f"ge{lo}", f"lt{hi}"], "_count": page_size}
    resources: list[dict[str, Any]] = []
    with session:
        while url:
            bundle = _get(session, url, ds, policy, params)
            resources.extend(e["resource"] for e in bundle.get("entry", []))
            url = next(
                (lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None
            )
            params = None
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


def extract_imaging(
    ds: date, endpoint: ImagingEndpoint, page_size: int = 500, policy: RetryPolicy | None = None
) -> dict[str, pd.DataFrame]:
    """Studies and reports last updated on `ds`, flattened and typed, PII still inside."""
    policy = policy or RetryPolicy()
    where = f"imaging {ds}"
    out: dict[str, pd.DataFrame] = {}
    for name, resource, flatten in (
        ("studies", "ImagingStudy", flatten_study),
        ("reports", "DiagnosticReport", flatten_report),
    ):
        spec = table("imaging", name)
        rows = [flatten(r) for r in search(endpoint, resource, ds, page_size, policy)]
        frame = pd.DataFrame.from_records(rows)
        out[name] = (typed(frame, spec, where) if rows else empty(spec, where)).sort_values(
            list(spec.key), ignore_index=True
        )
    return out
