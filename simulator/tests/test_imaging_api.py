"""The imaging API speaks CONTRACTS §2.2: auth, windows, complete pagination, faults on demand.

Assertions name resource ids and statuses only; resources carry personal data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from yilian_sim.config import FaultSpec, SimulationConfig
from yilian_sim.faults import FaultContext
from yilian_sim.layout import Layout
from yilian_sim.model import RemoteRead
from yilian_sim.population import person
from yilian_sim.sources import day_end
from yilian_sim.sources.imaging_api import EXT, ImagingServer, ImagingStore, serve_imaging

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = SimulationConfig(seed=3, scale=0.05)
D1 = CONFIG.start
D2 = D1 + timedelta(days=1)
KNOWN = {"QN1001", "QN2101"}


def remote_read(day: date, n: int) -> RemoteRead:
    """Reads every 20 minutes; pairs share an upload second, so ties are ordered by id."""
    exam = datetime(day.year, day.month, day.day, 8) + timedelta(minutes=20 * (n // 2))
    requested = exam + timedelta(minutes=10)
    return RemoteRead(
        study_id=f"ST{day:%Y%m%d}{n:06d}",
        patient=person("522723", n, CONFIG.seed),
        requesting_facility_code="QN2101",
        reading_facility_code="QN1001",
        modality="DX" if n % 3 else "CT",
        number_of_series=1 + n % 3,
        exam_at=exam,
        uploaded_at=exam + timedelta(minutes=5),
        read_requested_at=requested,
        report_id=f"RP{day:%Y%m%d}{n:06d}",
        reported_at=requested + timedelta(minutes=20) if n % 4 else None,
        conclusion="双肺纹理清晰，未见明显异常。",
    )


READS = {D1: [remote_read(D1, n) for n in range(23)], D2: [remote_read(D2, n) for n in range(9)]}


def write(store: ImagingStore, day: date, config: SimulationConfig = CONFIG) -> None:
    reads = READS[day]
    reported = [r for r in reads if r.reported_at is not None]
    store.write_day(day, reads, reported, KNOWN, FaultContext(config, day))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ImagingServer]:
    """Both days stored, but the clock at the end of day 1."""
    store = ImagingStore(tmp_path / "imaging.sqlite")
    write(store, D1)
    write(store, D2)
    store.advance_clock(day_end(D1))
    with ImagingServer(tmp_path / "imaging.sqlite", TOKEN) as running:
        yield running


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, params=params, headers=AUTH, timeout=10)


def collect(url: str, **params: Any) -> tuple[list[str], list[int]]:
    """Every page of a search: the resource ids in order and each page's `total`."""
    ids, totals = [], []
    response = get(url, **params)
    while True:
        assert response.status_code == 200
        bundle = response.json()
        ids += [e["resource"]["id"] for e in bundle.get("entry", [])]
        totals.append(bundle["total"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return ids, totals
        response = requests.get(following[0], headers=AUTH, timeout=10)


def test_pages_cover_the_visible_resources_exactly_once(server: ImagingServer) -> None:
    ids, totals = collect(f"{server.base_url}/ImagingStudy", _count=4)
    expected = sorted(r.study_id for r in READS[D1])
    assert ids == expected
    assert set(totals) == {len(expected)}
    assert len(totals) == 6

    reports, _ = collect(f"{server.base_url}/DiagnosticReport", _count=5)
    assert reports == sorted(r.report_id for r in READS[D1] if r.reported_at is not None)


def test_nothing_after_the_clock_is_visible_even_mid_pagination(server: ImagingServer) -> None:
    first = get(f"{server.base_url}/ImagingStudy", _count=10).json()
    server.store.advance_clock(day_end(D2))
    ids = [e["resource"]["id"] for e in first["entry"]]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest, _ = collect(next_url)
    assert ids + rest == sorted(r.study_id for r in READS[D1])

    now_visible, _ = collect(f"{server.base_url}/ImagingStudy", _count=1000)
    assert len(now_visible) == len(READS[D1]) + len(READS[D2])


def test_last_updated_windows_with_every_prefix(server: ImagingServer) -> None:
    url = f"{server.base_url}/ImagingStudy"
    server.store.advance_clock(day_end(D2))
    everything, _ = collect(url, _count=1000)
    assert len(everything) == len(READS[D1]) + len(READS[D2])

    day2, _ = collect(url, _lastUpdated=[f"ge{D2}T00:00:00+08:00", f"lt{D2 + timedelta(1)}"])
    assert day2 == sorted(r.study_id for r in READS[D2])

    # study n reaches the cloud at 08:10 + 20 min * (n // 2): n 12 and 13 at exactly 10:10
    inclusive, _ = collect(url, _lastUpdated=[f"gt{D1}T00:00:00", f"le{D1}T10:10:00+08:00"])
    assert inclusive == [f"ST{D1:%Y%m%d}{n:06d}" for n in range(14)]
    exclusive, _ = collect(url, _lastUpdated=f"lt{D1}T02:10:00Z")
    assert exclusive == inclusive[:12]
    assert collect(url, _lastUpdated=f"ge{D2 + timedelta(1)}")[0] == []
    raw_plus = requests.get(f"{url}?_lastUpdated=ge{D2}T00:00:00+08:00", headers=AUTH, timeout=10)
    assert raw_plus.json()["total"] == len(READS[D2])


def test_bundle_and_resources_follow_the_contract(server: ImagingServer) -> None:
    response = get(f"{server.base_url}/ImagingStudy", _count=2)
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]
    study = bundle["entry"][0]["resource"]
    assert study["meta"]["lastUpdated"].endswith("+08:00")
    assert study["status"] == "available"
    assert study["subject"]["identifier"]["system"] == "urn:oid:2.16.156.10011.1.3"
    assert study["modality"][0]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
    assert [e["url"] for e in study["extension"]] == [
        EXT + "requesting-facility",
        EXT + "uploaded-at",
        EXT + "read-requested-at",
    ]
    report = get(f"{server.base_url}/DiagnosticReport", _count=1).json()["entry"][0]["resource"]
    assert report["status"] == "final"
    assert report["imagingStudy"][0]["reference"].startswith("ImagingStudy/ST")
    assert report["performer"][0]["identifier"] == {
        "system": "urn:yilian:facility-code",
        "value": "QN1001",
    }
    assert report["meta"]["lastUpdated"] == report["issued"]


def test_a_missing_or_wrong_token_is_refused_with_401(server: ImagingServer) -> None:
    url = f"{server.base_url}/ImagingStudy"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    metadata = requests.get(f"{server.base_url}/metadata", timeout=10)
    assert metadata.json()["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize(
    "params",
    [
        {"_count": "abc"},
        {"_count": "0"},
        {"_lastUpdated": "eq2026-11-01"},
        {"_lastUpdated": "ge2026-13-01"},
        {"subject": "x"},
        {"_cursor": "bm90LWEtY3Vyc29y"},
    ],
)
def test_bad_parameters_are_400_with_an_operation_outcome(
    server: ImagingServer, params: dict[str, str]
) -> None:
    response = get(f"{server.base_url}/ImagingStudy", **params)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "invalid"


def test_count_defaults_to_100_and_is_capped_at_1000(server: ImagingServer) -> None:
    server.store.advance_clock(day_end(D2))
    assert len(get(f"{server.base_url}/ImagingStudy").json()["entry"]) == 32
    assert get(f"{server.base_url}/ImagingStudy", _count=5000).status_code == 200


def test_api_errors_for_n_requests_then_recovery(server: ImagingServer) -> None:
    server.inject_fault("api_errors", 2)
    url = f"{server.base_url}/ImagingStudy"
    assert [get(url).status_code for _ in range(3)] == [503, 503, 200]
    assert [(h["fault"], h["status"]) for h in server.store.fault_hits()] == [
        ("api_errors", 503),
        ("api_errors", 503),
    ]


def test_rate_limit_answers_429_with_retry_after(server: ImagingServer) -> None:
    server.inject_fault("api_rate_limit", 1)
    response = get(f"{server.base_url}/DiagnosticReport")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert get(f"{server.base_url}/DiagnosticReport").status_code == 200


def test_slow_answers_are_late_but_right(server: ImagingServer) -> None:
    server.inject_fault("slow_api", 1, delay=0.4)
    url = f"{server.base_url}/ImagingStudy"
    started = time.perf_counter()
    slow = get(url)
    slow_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fast = get(url)
    assert slow.status_code == fast.status_code == 200
    assert slow_seconds >= 0.4 > time.perf_counter() - started
    assert slow.content == fast.content, "a slow answer differs from the normal one"


def test_admin_endpoint_switches_faults_on_a_running_server(server: ImagingServer) -> None:
    admin = server.base_url.removesuffix("/fhir") + "/_admin/faults"
    assert (
        requests.post(admin, json={"name": "api_errors", "count": 1}, timeout=10).status_code == 401
    )
    armed = requests.post(admin, json={"name": "api_errors", "count": 1}, headers=AUTH, timeout=10)
    assert armed.status_code == 200
    bad = requests.post(admin, json={"name": "nonsense"}, headers=AUTH, timeout=10)
    assert bad.status_code == 400
    assert get(f"{server.base_url}/ImagingStudy").status_code == 503
    assert get(f"{server.base_url}/ImagingStudy").status_code == 200


def test_a_days_api_faults_are_armed_once_when_the_day_is_written(tmp_path: Path) -> None:
    config = SimulationConfig(seed=3, faults=(FaultSpec("api_rate_limit", day=D1, count=2),))
    paths = Layout(tmp_path / "sim")
    store = ImagingStore(paths.imaging_store)
    write(store, D1, config)
    write(store, D1, config)  # rewriting the day does not arm it again
    store.advance_clock(day_end(D1))
    with serve_imaging(paths, TOKEN) as base_url:
        statuses = [get(f"{base_url}/ImagingStudy").status_code for _ in range(3)]
    assert statuses == [429, 429, 200]


def test_a_slow_answer_holds_up_no_other_client(server: ImagingServer) -> None:
    server.inject_fault("slow_api", 1, delay=1.0)
    url = f"{server.base_url}/ImagingStudy"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, url)
        time.sleep(0.2)  # the slow request has taken the fault
        started = time.perf_counter()
        assert get(url).status_code == 200
        assert time.perf_counter() - started < 0.5
        assert slow.result().status_code == 200


def test_a_taken_port_fails_at_construction(server: ImagingServer, tmp_path: Path) -> None:
    port = int(server.base_url.rsplit(":", 1)[1].removesuffix("/fhir"))
    with pytest.raises(OSError):
        ImagingServer(tmp_path / "other.sqlite", TOKEN, port=port)
