"""
### yilian_prescriptions — the prescription-sharing platform's day, into `raw.prescriptions__*`

The platform (处方信息共享平台) drops `prescriptions_<ds>.csv` and `dispenses_<ds>.csv` (GB18030)
into a folder (connection `yilian_prescriptions_drop`, extra `{"path": ...}`; default: the
simulator's drop folder), then writes `manifest_<ds>.json` last, with row counts and SHA-256.

1. **wait_for_delivery** — waits in the triggerer (no worker held) until the day's manifest
   exists, polling every 2 s.
2. **extract** — verify every file's SHA-256 and row count against the manifest (a truncated or
   missing file fails naming the file, expected vs actual), read it, keep it encrypted in
   staging. Nothing is used before its file checks out.
3. **pseudonymise_and_land** — derive sex, birth year, county; keyed HMAC of the resident ID;
   drop names and phones; write landing Parquet.
4. **validate** — `expectations/prescriptions__*.json`: schema, pharmacy credit codes
   (GB 32100), hospitals known to the facility master.
5. **load** — replace the day in `raw`, quarantine and audit (pool `yilian_duckdb`); updates the
   Asset `yilian://raw/prescriptions`.

One run per business day (its logical date); backfill with `airflow backfill create`.
"""

from yilian.dags import source_dag

dag = source_dag("prescriptions", doc_md=__doc__)
