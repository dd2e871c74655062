"""
### yilian_imaging — the imaging cloud's day, into `raw.imaging__*`

Searches the imaging cloud's FHIR R4 API (医学影像云平台; connection `yilian_imaging`: host, port,
schema → base URL, password = bearer token) for the ImagingStudy and DiagnosticReport resources
last updated on business day `ds` (`_lastUpdated` ge/lt, +08:00), following every `link[next]`.
429 and 5xx answers are retried with exponential back-off honouring `Retry-After`.

1. **extract** — page through both searches; keep the flattened rows encrypted in staging.
2. **pseudonymise_and_land** — derive sex, birth year, county; keyed HMAC of the resident ID;
   drop `subject.display`; write `landing/source=imaging/table=*/ds=*/`.
3. **validate** — `expectations/imaging__*.json`: modality, facilities, turnaround order
   (a report cannot be signed before its read was requested), volume.
   **data_docs** then renders the day's GX Data Docs pages, passed or blocked (outside the
   writer pool).
4. **load** — replace the day in `raw`, quarantine and audit (pool `yilian_duckdb`); updates the
   Asset `yilian://raw/imaging`.

One run per business day (its logical date); backfill with `airflow backfill create`.
"""

from yilian.dags import source_dag

dag = source_dag("imaging", doc_md=__doc__)
