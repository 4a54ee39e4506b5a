"""benchmarks/app_cpu.py at a tiny size: the app it builds answers both fixture reviews
(the script stops on any other status) and it reports a figure for each endpoint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_reports_our_layers_cpu_for_both_endpoints() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "app_cpu.py"),
                          "--requests", "50", "--rounds", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "pure Python" in run.stdout  # the working tree is never compiled
    for endpoint in ("validate", "mutate"):
        match = re.search(rf"/{endpoint}\s+([\d.]+) µs", run.stdout)
        assert match and float(match.group(1)) > 0, run.stdout
