"""benchmarks/all.py --quick: every step runs and the table has every figure of issue 21.

The sizes are tiny, so the figures mean nothing and nothing here looks at them: only that
each row was measured (a number, not "failed"), in the table and in the JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kube.binaries import in_ci, require

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# The rows of issue 21's target table, as the table names them.
ISSUE_ROWS = (
    "throughput vs raw ASGI ceiling",
    "engine, shipped policies, Service / Ingress median",
    "engine, 100 policies, median",
    "added to a CREATE through kube-apiserver, p50 / p99",
    "100k Services: ready / RSS",
    "`map` over 1,600 rules",
)


def _require_wrk() -> None:
    """all.py's throughput step measures with wrk: skip without it, fail under CI."""
    if shutil.which("wrk") is None:
        if in_ci():
            pytest.fail("CI=true and wrk is missing (scripts/test installs it)", pytrace=False)
        pytest.skip("wrk is not installed (Debian package wrk)")


def test_quick_run_reports_every_figure_beside_its_target(tmp_path: Path) -> None:
    require()  # the real kube-apiserver of step 4
    _require_wrk()
    out = tmp_path / "all.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "all.py"), "--quick",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    table = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
             for line in run.stdout.splitlines() if line.startswith("| ")}
    for row in ISSUE_ROWS:
        assert row in table, f"{row!r} missing from the table:\n{run.stdout}"
        measured, _before, target = table[row]
        assert any(ch.isdigit() for ch in measured), f"{row}: {measured}"
        assert target.startswith("≤") or target.startswith("≥"), f"{row}: {target}"

    written = json.loads(out.read_text())
    assert written["quick"] is True
    rows = {row["figure"]: row for row in written["rows"]}
    assert set(rows) == set(ISSUE_ROWS)
    for name, row in rows.items():
        assert row["values"], f"{name}: no values in the JSON"
        assert all(isinstance(v, int | float) for v in row["values"].values()), name
    steps = written["steps"]
    assert [step["name"] for step in steps] == ["map", "engine", "throughput", "apiserver"]
    assert not [step["error"] for step in steps if step["error"]]
    # The ceiling is measured in this run, under the same client, before and after.
    throughput = rows["throughput vs raw ASGI ceiling"]["values"]
    assert throughput["ceiling_before_rps"] > 0 and throughput["ceiling_after_rps"] > 0
    assert throughput["validate_ratio"] > 0


def test_before_runs_the_engine_step_on_another_checkout_and_notes_the_ratio(
        tmp_path: Path) -> None:
    _require_wrk()
    # This checkout stands in for the issue's: same engine.py, its own environment.
    out = tmp_path / "all.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "all.py"), "--quick",
                          "--skip-apiserver", "--before", str(ROOT), "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {row["figure"]: row for row in json.loads(out.read_text())["rows"]}
    engine = rows["engine, shipped policies, Service / Ingress median"]
    assert "the issue's build" in engine["note"]
    for key in ("before_service_median_us", "before_ingress_median_us",
                "scaled_service_median_us", "scaled_ingress_median_us"):
        assert engine["values"][key] > 0, key
    assert rows["engine, 100 policies, median"]["values"]["scaled_median_us"] > 0


def test_before_without_an_environment_is_a_one_line_usage_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "all.py"), "--before",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"--before {tmp_path}: no environment at" in run.stderr
    assert "Traceback" not in run.stderr
