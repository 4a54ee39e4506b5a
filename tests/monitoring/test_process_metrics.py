"""What a scrape of a running `edgewarden serve` shows beside edgewarden's own metrics: the
build (version and Python, a gauge of 1) and the process (memory, CPU, file descriptors,
start time), on the metrics port Prometheus scrapes and on the HTTPS /metrics alike."""

from __future__ import annotations

import os
import platform
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.process_output import ProcessOutput
from webhook import __version__

EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
WAIT = 30.0
PROCESS_METRICS = ("process_resident_memory_bytes", "process_virtual_memory_bytes",
                   "process_cpu_seconds", "process_open_fds", "process_max_fds",
                   "process_start_time_seconds")


def families(text: str) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """name -> (type, samples) of a scrape."""
    return {family.name: (family.type, [(s.name, s.labels, s.value) for s in family.samples])
            for family in text_string_to_metric_families(text)}


def test_a_scrape_shows_the_build_and_the_process(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0", "--metrics-port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        port = output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1)
        metrics_port = output.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/metrics").group(1)
        context = ssl.create_default_context(cafile=tmp_path / ".edgewarden-dev" / "ca.crt")
        scrapes = {
            "metrics port": httpx.get(f"http://127.0.0.1:{metrics_port}/metrics",
                                      timeout=10).text,
            "https": httpx.get(f"https://localhost:{port}/metrics", verify=context,
                               timeout=10).text,
        }
    finally:
        process.terminate()
        process.wait(timeout=WAIT)
    for where, text in scrapes.items():
        found = families(text)
        kind, samples = found["edgewarden_build_info"]
        assert kind == "gauge", where
        assert samples == [("edgewarden_build_info",
                            {"version": __version__, "python": platform.python_version()},
                            1.0)], where
        for name in PROCESS_METRICS:
            assert name in found, f"{where}: no {name}"
        kind, samples = found["process_cpu_seconds"]
        assert kind == "counter" and samples[0][0] == "process_cpu_seconds_total", where
        [(_, _, resident)] = found["process_resident_memory_bytes"][1]
        assert resident > 1024 * 1024, f"{where}: a Python server holds more than a MiB"
        [(_, _, started)] = found["process_start_time_seconds"][1]
        assert started > 1_600_000_000, where
        assert "python_info" in found and "python_gc_collections" in found, where
