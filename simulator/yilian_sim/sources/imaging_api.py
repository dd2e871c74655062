"""The imaging cloud (CONTRACTS §2.2): a FHIR R4 store and the HTTP server extractors call.

The store is a SQLite file of resources (type, id, lastUpdated, JSON) plus the simulated clock:
a resource is visible only once `meta.lastUpdated` <= the clock, as in a real system that has
lived up to the end of the last simulated day. The server is a FastAPI app run by uvicorn,
speaking searchset Bundles with keyset pagination (a `next` link holds the last key seen and
the clock of the first page, so a paged read is a consistent snapshot with no duplicates). It
fails on demand (503, 429 with Retry-After, slow answers, a `next` link that loops back to the
page just served) for the next N requests, switched
either by the day's faults or at runtime, and records every request a fault touched.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.datastructures import URL

from yilian_sim.faults import (
    API_FAULTS,
    SLOW_API_DELAY_S,
    FaultContext,
    corrupt_resident_id,
    pick,
    unknown_facility_code,
)
from yilian_sim.layout import Layout
from yilian_sim.model import RemoteRead
from yilian_sim.sources import on_day

SOURCE = "imaging"
RESOURCE_TYPES = ("ImagingStudy", "DiagnosticReport")
DEFAULT_COUNT = 100
MAX_COUNT = 1000
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
EXT = "https://yilian.example/fhir/StructureDefinition/"
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
FACILITY_SYSTEM = "urn:yilian:facility-code"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
FHIR_JSON = "application/fhir+json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    type TEXT NOT NULL, id TEXT NOT NULL, last_updated TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (type, id));
CREATE INDEX IF NOT EXISTS resource_by_time ON resource (type, last_updated, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_fault (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    remaining INTEGER NOT NULL, delay REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_fault_hit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, name TEXT NOT NULL,
    status INTEGER NOT NULL, path TEXT NOT NULL, at TEXT NOT NULL);
"""


def fhir_instant(moment: datetime) -> str:
    """Naive local time as a FHIR dateTime with the +08:00 offset."""
    return moment.replace(microsecond=0).isoformat() + "+08:00"


def _key(moment: datetime) -> str:
    """The sortable text a resource's lastUpdated is stored and compared as (naive local)."""
    return moment.isoformat(timespec="seconds")


def study_resource(read: RemoteRead) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "id": read.study_id,
        "meta": {"lastUpdated": fhir_instant(study_time(read))},
        "status": "available",
        "subject": {
            "identifier": {"system": RESIDENT_ID_SYSTEM, "value": read.patient.resident_id},
            "display": read.patient.name,
        },
        "started": fhir_instant(read.exam_at),
        "modality": [{"system": DICOM, "code": read.modality}],
        "numberOfSeries": read.number_of_series,
        "extension": [
            {
                "url": EXT + "requesting-facility",
                "valueIdentifier": {
                    "system": FACILITY_SYSTEM,
                    "value": read.requesting_facility_code,
                },
            },
            {"url": EXT + "uploaded-at", "valueDateTime": fhir_instant(read.uploaded_at)},
            {
                "url": EXT + "read-requested-at",
                "valueDateTime": fhir_instant(read.read_requested_at),
            },
        ],
    }


def report_resource(read: RemoteRead) -> dict[str, Any]:
    assert read.reported_at is not None
    return {
        "resourceType": "DiagnosticReport",
        "id": read.report_id,
        "meta": {"lastUpdated": fhir_instant(read.reported_at)},
        "status": "final",
        "code": {"text": "remote imaging read"},
        "imagingStudy": [{"reference": f"ImagingStudy/{read.study_id}"}],
        "performer": [
            {"identifier": {"system": FACILITY_SYSTEM, "value": read.reading_facility_code}}
        ],
        "issued": fhir_instant(read.reported_at),
        "effectiveDateTime": fhir_instant(read.exam_at),
        "conclusion": read.conclusion,
    }


def study_time(read: RemoteRead) -> datetime:
    """A study reaches the cloud once uploaded and its read requested."""
    return max(read.uploaded_at, read.read_requested_at)


class ImagingStore:
    """The imaging cloud's resources, clock and pending API faults, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    # ---- writing ------------------------------------------------------------------------

    def write_day(
        self,
        day: date,
        studies: Sequence[RemoteRead],
        reports: Sequence[RemoteRead],
        known_facilities: set[str],
        ctx: FaultContext,
    ) -> dict[str, int]:
        """Upsert the studies that reached the cloud and the reports signed on `day`, apply the
        day's faults (and arm the API ones), then move the clock to the end of the day."""
        study_docs = [study_resource(r) for r in studies]
        report_docs = [report_resource(r) for r in reports]
        _corrupt(day, reports, study_docs, report_docs, known_facilities, ctx)
        rows = [
            ("ImagingStudy", d["id"], _key(study_time(r)), json.dumps(d, ensure_ascii=False))
            for r, d in zip(studies, study_docs, strict=True)
        ] + [
            ("DiagnosticReport", d["id"], _key(r.reported_at), json.dumps(d, ensure_ascii=False))
            for r, d in zip(reports, report_docs, strict=True)
            if r.reported_at is not None
        ]
        with closing(self._connect()) as db, db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO resource VALUES (?, ?, ?, ?)", rows)
            for name in API_FAULTS:
                if spec := ctx.spec(name):
                    db.execute(
                        "INSERT OR IGNORE INTO api_fault (origin, name, remaining, delay) "
                        "VALUES (?, ?, ?, ?)",
                        (f"{day.isoformat()}:{name}", name, spec.count, SLOW_API_DELAY_S),
                    )
                    ctx.log.add(name, day, SOURCE, "requests", (), count=spec.count)
        return {"ImagingStudy": len(study_docs), "DiagnosticReport": len(report_docs)}

    def advance_clock(self, moment: datetime) -> None:
        """The clock only moves forward: rewriting an old day hides nothing already visible."""
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO meta VALUES ('clock', ?) ON CONFLICT (key) DO UPDATE "
                "SET value = max(value, excluded.value)",
                (_key(moment),),
            )

    def clock(self) -> datetime | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    # ---- reading ------------------------------------------------------------------------

    def search(
        self,
        resource_type: str,
        bounds: Sequence[tuple[str, str]],
        count: int,
        clock: str,
        after: tuple[str, str] | None,
    ) -> tuple[int, list[dict[str, Any]], bool]:
        """(total in window, one page after the `after` key, whether more pages remain)."""
        ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        where = ["type = ?", "last_updated <= ?"]
        args: list[Any] = [resource_type, clock]
        for op, value in bounds:
            where.append(f"last_updated {ops[op]} ?")
            args.append(value)
        with closing(self._connect()) as db:
            total = db.execute(
                f"SELECT count(*) FROM resource WHERE {' AND '.join(where)}", args
            ).fetchone()[0]
            if after is not None:
                where.append("(last_updated > ? OR (last_updated = ? AND id > ?))")
                args += [after[0], after[0], after[1]]
            page = db.execute(
                f"SELECT body FROM resource WHERE {' AND '.join(where)} "
                "ORDER BY last_updated, id LIMIT ?",
                [*args, count + 1],
            ).fetchall()
        return total, [json.loads(b) for (b,) in page[:count]], len(page) > count

    def count(self, resource_type: str) -> int:
        with closing(self._connect()) as db:
            return db.execute(
                "SELECT count(*) FROM resource WHERE type = ?", (resource_type,)
            ).fetchone()[0]

    # ---- API faults -----------------------------------------------------------------------

    def arm_fault(self, name: str, count: int, delay: float = SLOW_API_DELAY_S) -> None:
        """Make the next `count` API requests fail as `name` says (runtime switch)."""
        if name not in API_FAULTS:
            raise ValueError(f"not an API fault: {name!r}; choose one of {', '.join(API_FAULTS)}")
        with closing(self._connect()) as db, db:
            db.execute("BEGIN IMMEDIATE")  # serialises arming, so origins stay unique
            n = db.execute("SELECT count(*) FROM api_fault").fetchone()[0]
            db.execute(
                "INSERT INTO api_fault (origin, name, remaining, delay) VALUES (?, ?, ?, ?)",
                (f"runtime:{n}", name, count, delay),
            )

    def disarm_faults(self) -> None:
        """Drop every pending API fault (a test's armed fault must not outlive the test)."""
        with closing(self._connect()) as db, db:
            db.execute("UPDATE api_fault SET remaining = 0")

    def take_fault(self, path: str) -> tuple[str, float] | None:
        """Consume one pending API fault for this request, recording the hit; errors first."""
        with closing(self._connect()) as db:
            if db.execute("SELECT 1 FROM api_fault WHERE remaining > 0 LIMIT 1").fetchone() is None:
                return None
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT seq, origin, name, delay FROM api_fault WHERE remaining > 0 "
                    "ORDER BY CASE name WHEN 'api_errors' THEN 0 WHEN 'api_rate_limit' THEN 1 "
                    "ELSE 2 END, seq LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
                seq, origin, name, delay = row
                db.execute("UPDATE api_fault SET remaining = remaining - 1 WHERE seq = ?", (seq,))
                status = {"api_errors": 503, "api_rate_limit": 429}.get(name, 200)
                db.execute(
                    "INSERT INTO api_fault_hit (origin, name, status, path, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (origin, name, status, path, datetime.now().isoformat(timespec="milliseconds")),
                )
        return name, delay

    def fault_hits(self) -> list[dict[str, Any]]:
        """Every request a fault touched: origin (day or runtime), fault, status, path."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT origin, name, status, path, at FROM api_fault_hit ORDER BY seq"
            ).fetchall()
        return [
            dict(zip(("origin", "fault", "status", "path", "at"), r, strict=True)) for r in rows
        ]


def _corrupt(
    day: date,
    reports: Sequence[RemoteRead],
    study_docs: list[dict[str, Any]],
    report_docs: list[dict[str, Any]],
    known_facilities: set[str],
    ctx: FaultContext,
) -> None:
    """Row faults on the day's resources; studies and reports never change once written."""
    if spec := ctx.spec("invalid_resident_ids"):
        hit = pick(study_docs, spec.rate, ctx.rng(spec.name, "ImagingStudy"))
        for i, doc in enumerate(hit):
            ident = doc["subject"]["identifier"]
            ident["value"] = corrupt_resident_id(ident["value"], i)
        ctx.log.add(spec.name, day, SOURCE, "ImagingStudy", (d["id"] for d in hit))
    if spec := ctx.spec("unknown_facility_codes"):
        hit = pick(study_docs, spec.rate, ctx.rng(spec.name, "ImagingStudy"))
        for doc in hit:
            ident = doc["extension"][0]["valueIdentifier"]
            ident["value"] = unknown_facility_code(ident["value"], known_facilities)
        ctx.log.add(spec.name, day, SOURCE, "ImagingStudy", (d["id"] for d in hit))
    if spec := ctx.spec("inverted_timestamps"):
        rng = ctx.rng(spec.name, "DiagnosticReport")
        pairs = [
            (r, d) for r, d in zip(reports, report_docs, strict=True) if on_day(r.reported_at, day)
        ]
        hit = pick(pairs, spec.rate, rng)
        for read, doc in hit:
            doc["issued"] = fhir_instant(
                read.read_requested_at - timedelta(minutes=rng.randint(5, 240))
            )
        ctx.log.add(spec.name, day, SOURCE, "DiagnosticReport", (d["id"] for _, d in hit))


# ---- HTTP -----------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A search parameter the server cannot honour: answered with 400 and an OperationOutcome."""


def outcome(code: str, message: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }


def parse_instant(text: str) -> str:
    """A `_lastUpdated` value as the store's naive local key; offsets are converted to +08:00,
    a value without an offset is taken as local time, a bare date as its midnight. A space
    stands for the '+' of an offset a client forgot to percent-encode."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"_lastUpdated: {text!r} is not an ISO 8601 date or dateTime") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL).replace(tzinfo=None)
    return moment.isoformat()


def parse_search(query: dict[str, list[str]]) -> tuple[list[tuple[str, str]], int, dict | None]:
    """(_lastUpdated bounds, _count, decoded cursor) from a search's query string."""
    unknown = sorted(set(query) - {"_lastUpdated", "_count", "_cursor"})
    if unknown:
        raise BadRequest(f"unsupported search parameter(s): {', '.join(unknown)}")
    bounds = []
    for value in query.get("_lastUpdated", []):
        prefix, rest = value[:2], value[2:]
        if prefix not in ("ge", "gt", "le", "lt"):
            raise BadRequest(f"_lastUpdated={value!r}: prefix must be ge, gt, le or lt")
        bounds.append((prefix, parse_instant(rest)))
    counts = query.get("_count", [str(DEFAULT_COUNT)])
    if len(counts) != 1 or not counts[0].isdigit() or int(counts[0]) < 1:
        raise BadRequest(f"_count={','.join(counts)!r}: must be one integer from 1 to {MAX_COUNT}")
    cursor = None
    if "_cursor" in query:
        try:
            cursor = json.loads(base64.urlsafe_b64decode(query["_cursor"][0]))
            str(cursor["clock"]), str(cursor["lu"]), str(cursor["id"])
        except (ValueError, KeyError, TypeError):
            raise BadRequest("_cursor is not one this server issued") from None
    return bounds, min(int(counts[0]), MAX_COUNT), cursor


def capability_statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Authorization: Bearer <token>"},
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "_lastUpdated", "type": "date"},
                            {"name": "_count", "type": "number"},
                        ],
                    }
                    for t in RESOURCE_TYPES
                ],
            }
        ],
    }


class _Refused(Exception):
    """An answer other than the one asked for: an OperationOutcome with its status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers


def _fhir(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON answer; names and conclusions stay readable UTF-8, not \\u escapes."""
    return Response(
        json.dumps(body, ensure_ascii=False), status, headers, FHIR_JSON + "; charset=utf-8"
    )


def search_bundle(
    store: ImagingStore,
    resource_type: str,
    query: dict[str, list[str]],
    url: URL,
    looping: bool = False,
) -> dict[str, Any]:
    """One page of a search as a searchset Bundle. `next` carries the cursor (last key, first
    page's clock), so a client follows it verbatim and a paged read is one snapshot. `looping`
    (the looping_next_link fault) makes `next` this very page, as a broken cursor would."""
    bounds, count, cursor = parse_search(query)
    if cursor is not None:
        clock, after = cursor["clock"], (cursor["lu"], cursor["id"])
    else:
        now = store.clock()
        clock, after = (_key(now) if now else ""), None
    total, resources, more = store.search(resource_type, bounds, count, clock, after)
    base = f"{url.scheme}://{url.netloc}"
    params = [("_lastUpdated", v) for v in query.get("_lastUpdated", [])]
    params.append(("_count", str(count)))
    links = [{"relation": "self", "url": str(url)}]
    if more:
        last = resources[-1]
        token = json.dumps(
            {"clock": clock, "lu": parse_instant(last["meta"]["lastUpdated"]), "id": last["id"]}
        )
        params.append(("_cursor", base64.urlsafe_b64encode(token.encode()).decode()))
        links.append(
            {"relation": "next", "url": f"{base}/fhir/{resource_type}?{urlencode(params)}"}
        )
    if looping:
        links = [links[0], {"relation": "next", "url": str(url)}]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/fhir/{resource_type}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def imaging_app(store: ImagingStore, token: str) -> FastAPI:
    """The FHIR API over `store`. Endpoints touching the store are plain functions, which
    FastAPI runs in its thread pool: SQLite and a slow fault's sleep never hold up others."""
    # No OpenAPI pages (their assets come from a CDN) and no redirects of trailing slashes.
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)

    @app.exception_handler(_Refused)
    async def refused(request: Request, error: _Refused) -> Response:
        return _fhir(error.status, outcome(error.code, str(error)), error.headers)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, error: BadRequest) -> Response:
        return _fhir(400, outcome("invalid", str(error)))

    def take_fault(request: Request) -> None:
        """A pending fault strikes before authentication, as a failing gateway would."""
        request.state.fault = None
        if fault := store.take_fault(request.url.path):
            name, delay = fault
            request.state.fault = name
            if name == "api_errors":
                raise _Refused(503, "transient", "imaging cloud temporarily unavailable")
            if name == "api_rate_limit":
                raise _Refused(429, "throttled", "too many requests", {"Retry-After": "1"})
            if name == "slow_api":
                time.sleep(delay)

    def authorised(request: Request) -> None:
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not (given and hmac.compare_digest(given.encode(), token.encode())):
            raise _Refused(
                401,
                "login",
                "a valid bearer token is required",
                {"WWW-Authenticate": 'Bearer realm="yilian-imaging"'},
            )

    @app.get("/fhir/metadata")
    @app.get("/fhir/metadata/")
    def metadata() -> Response:
        """Open to all, faults or not: it is where a client learns it needs a token."""
        return _fhir(200, capability_statement())

    @app.get("/fhir/{resource_type:path}", dependencies=[Depends(take_fault), Depends(authorised)])
    def search(resource_type: str, request: Request) -> Response:
        resource_type = resource_type.rstrip("/")
        if resource_type not in RESOURCE_TYPES:
            raise _Refused(404, "not-supported", f"no such resource type: {resource_type}")
        query = parse_qs(request.url.query, keep_blank_values=True)
        looping = request.state.fault == "looping_next_link"
        return _fhir(200, search_bundle(store, resource_type, query, request.url, looping))

    @app.post("/_admin/faults", dependencies=[Depends(authorised)])
    async def arm(request: Request) -> Response:
        """`POST /_admin/faults {"name", "count", "delay"?}` arms an API fault at runtime."""
        try:
            spec = json.loads(await request.body() or b"{}")
            args = (
                str(spec["name"]),
                int(spec.get("count", 1)),
                float(spec.get("delay", SLOW_API_DELAY_S)),
            )
            await run_in_threadpool(store.arm_fault, *args)
        except (ValueError, KeyError, TypeError) as error:
            raise _Refused(400, "invalid", f"bad fault request: {error}") from None
        return _fhir(200, {"armed": spec})

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def not_found(request: Request) -> Response:
        """Any other GET or POST: an OperationOutcome like every other refusal."""
        raise _Refused(404, "not-found", f"no such endpoint: {request.url.path}")

    return app


class ImagingServer:
    """The imaging API on loopback; a context manager for tests, `serve_forever` for the CLI.

    The socket is bound here, so a taken port fails at construction and `port=0` has its real
    port at once; `base_url` is `http://127.0.0.1:<port>/fhir`. uvicorn serves the app on it,
    in a thread while the context is open.
    """

    def __init__(
        self,
        store_path: Path,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
    ) -> None:
        if not token:
            raise ValueError("the imaging API needs a bearer token")
        self.store = ImagingStore(store_path)
        self._socket = socket.create_server((host, port))
        if quiet:  # the host process's logging config stays as it is; no access log
            logs: dict[str, Any] = {"log_config": None, "log_level": "warning", "access_log": False}
        else:  # uvicorn's format, with the access log on stderr too: stdout stays the caller's
            config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
            config["handlers"]["access"]["stream"] = "ext://sys.stderr"
            logs = {"log_config": config}
        self._uvicorn = uvicorn.Server(uvicorn.Config(imaging_app(self.store, token), **logs))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}/fhir"

    def inject_fault(self, name: str, count: int, delay: float = SLOW_API_DELAY_S) -> None:
        """The next `count` requests fail as `name` says (one of faults.API_FAULTS)."""
        self.store.arm_fault(name, count, delay)

    def serve_forever(self) -> None:
        """Serve until stopped: in the main thread uvicorn turns SIGINT and SIGTERM into a
        clean shutdown (then re-raises them); elsewhere `__exit__` stops it."""
        with self._socket:
            self._uvicorn.run(sockets=[self._socket])

    def __enter__(self) -> ImagingServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        while not self._uvicorn.started:
            if not self._thread.is_alive():
                raise RuntimeError("the imaging API did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join()


@contextmanager
def serve_imaging(layout: Layout, token: str, port: int = 0) -> Iterator[str]:
    """The imaging API over `layout.imaging_store`, running in this process for the block;
    yields its base URL (`http://127.0.0.1:<port>/fhir`)."""
    with ImagingServer(layout.imaging_store, token, port=port) as server:
        yield server.base_url
