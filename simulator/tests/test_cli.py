"""The `yilian-sim` command line: sub-commands work, bad arguments fail clearly with exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from yilian_sim.cli import main
from yilian_sim.faults import FAULTS

PYTHON = sys.executable


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("YILIAN_DATA_DIR", str(tmp_path))
    return tmp_path


def test_importing_the_cli_loads_nothing_heavy() -> None:
    heavy = "{'sqlalchemy', 'pandas', 'numpy'}"
    probe = f"import sys, yilian_sim.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_faults_lists_every_switch_with_its_description(capsys: pytest.CaptureFixture) -> None:
    assert main(["faults"]) == 0
    out = capsys.readouterr().out
    for name, switch in FAULTS.items():
        assert f"{name}  [" in out
        assert switch.description.split()[0] in out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["simulate", "--days", "x"], "'x'"),
        (["simulate", "--days", "2", "--scale", "0"], "'0'"),
        (["simulate", "--days", "2", "--start", "2026-13-01"], "'2026-13-01'"),
        (["simulate", "--days", "2", "--fault", "bogus"], "'bogus'"),
        (["simulate", "--days", "2", "--fault", "api_errors:9"], "day 9"),
        (["simulate", "--days", "2", "--fault", "duplicate_rows:rate=2"], "rate"),
        (["simulate", "--days", "2", "--fault", "renamed_column:column=nope"], "'nope'"),
        (["simulate", "--days", "2", "--fault", "api_errors:size=3"], "'size'"),
        (["serve-imaging", "--port", "70000"], "'70000'"),
        (["truth"], "--days"),
        (["no-such-command"], "'no-such-command'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_value(
    argv: list[str], named: str, capsys: pytest.CaptureFixture, data_dir: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err
    assert not (data_dir / "sim").exists()


def test_simulate_writes_the_sources_and_reports_progress(
    data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["simulate", "--days", "2", "--scale", "0.03", "--seed", "9"]
    assert main([*argv, "--fault", "duplicate_rows:2", "--fault", "api_errors:2:count=1"]) == 0
    out, err = capsys.readouterr()
    assert re.findall(r"^(2026-11-0[12]): hospital [\d,]+ rows", err, re.M) == [
        "2026-11-01",
        "2026-11-02",
    ]
    assert re.search(r"hospital\s+his_encounter\s+[\d,]+", out)
    assert re.search(r"prescriptions\s+days\s+2", out)
    sim = data_dir / "sim"
    assert (sim / "hospital.sqlite").exists() and (sim / "imaging.sqlite").exists()
    assert (sim / "drop" / "2026-11-02" / "manifest_2026-11-02.json").exists()
    logged = json.loads((sim / "faults" / "2026-11-02.json").read_text())
    assert {h["fault"] for h in logged} == {"duplicate_rows", "api_errors"}
    assert json.loads((sim / "faults" / "2026-11-01.json").read_text()) == []


def test_serve_imaging_refuses_to_start_without_a_token(
    data_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_TOKEN_HERE", raising=False)
    assert main(["serve-imaging", "--port", "0", "--token-env", "NO_TOKEN_HERE"]) == 2
    assert "NO_TOKEN_HERE" in capsys.readouterr().err


def test_serve_imaging_runs_as_a_process(data_dir: Path) -> None:
    env = os.environ | {"YILIAN_DATA_DIR": str(data_dir), "TEST_IMAGING_TOKEN": "tok"}
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "yilian_sim.cli",
            "--sim-dir",
            str(data_dir / "sim"),
            "serve-imaging",
            "--port",
            "0",
        ]
        + ["--token-env", "TEST_IMAGING_TOKEN"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+/fhir", banner)
        assert base_url, banner
        assert requests.get(f"{base_url[0]}/metadata", timeout=10).status_code == 200
        search = requests.get(
            f"{base_url[0]}/ImagingStudy", headers={"Authorization": "Bearer tok"}, timeout=10
        )
        assert (search.status_code, search.json()["total"]) == (200, 0)
        assert requests.get(f"{base_url[0]}/ImagingStudy", timeout=10).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_truth_prints_aggregates_only(capsys: pytest.CaptureFixture) -> None:
    assert main(["truth", "--days", "1", "--scale", "0.03"]) == 0
    out = capsys.readouterr().out
    assert "in_county_visit_rate" in out and "== interoperability_daily" in out
    assert not re.search(r"\b\d{17}[\dX]\b", out), "a resident ID in the truth output"


def test_bench_simulator_times_the_given_scales(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "0.02"]) == 0
    assert "0.02" in capsys.readouterr().out
