"""The README's operator section works when followed literally from a fresh shell: only PATH
and HOME in the environment (and YILIAN_DATA_DIR, so the test leaves the checkout's data/ alone)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def operator_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Operating it from a shell.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README has no operator section with a bash block"
    joined = block.group(1).replace("\\\n", " ")
    commands = [line.split("#")[0].strip() for line in joined.splitlines()]
    return [" ".join(c.split()) for c in commands if c]


def test_the_operator_section_names_the_commands_an_operator_needs() -> None:
    commands = operator_commands()
    assert any("dags unpause" in c for c in commands)
    assert any("backfill create" in c for c in commands)
    assert any("dags clear" in c and "--partition-key" in c for c in commands)
    assert all(c.startswith(".venv/bin/yilian airflow ") for c in commands)


def test_the_operator_commands_run_from_a_fresh_shell(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "YILIAN_DATA_DIR": str(tmp_path / "data"),
    }
    for command in operator_commands():
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        if "dags list" in command:
            assert all(f"yilian_{d}" in done.stdout for d in ("hospital", "imaging", "marts"))
    listed = subprocess.run(
        ["bash", "-c", ".venv/bin/yilian airflow dags list-runs yilian_hospital"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "2026-11-07" in listed.stdout  # the backfill made its runs, one per business day
