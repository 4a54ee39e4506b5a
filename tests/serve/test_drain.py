"""``serve --drain-seconds``: on SIGTERM the server keeps answering for a while, closing each
connection after its answer and failing /readyz, so the API server's kept-alive connections
move to other replicas before this one closes them (docs/install.md, "Shutdown")."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from tests.admission.test_cli import WAIT
from tests.support.process_output import ProcessOutput

EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]


def test_sigterm_drains_connections_before_the_server_stops(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0", "--probe-port", "0",
         "--drain-seconds", "3", "--log-level", "info"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        port = output.wait_for(r"Uvicorn running on https://127\.0\.0\.1:(\d+)").group(1)
        probe = output.wait_for(r"probes on http://127\.0\.0\.1:(\d+)/healthz").group(1)
        ca = tmp_path / ".edgewarden-dev" / "ca.crt"
        assert ca.is_file()
        trust = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(verify=trust, timeout=10) as client:
            before = client.get(f"https://127.0.0.1:{port}/healthz")
            assert before.status_code == 200
            assert before.headers.get("connection") != "close"  # kept alive until now
            process.send_signal(signal.SIGTERM)
            output.wait_for(r"draining connections for 3 s")
            during = client.get(f"https://127.0.0.1:{port}/healthz")
            assert during.status_code == 200, "still answering while it drains"
            assert during.headers.get("connection") == "close"
        ready = httpx.get(f"http://127.0.0.1:{probe}/readyz", timeout=10)
        assert ready.status_code == 503
        assert "shutting down" in ready.text
        process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)
    assert "Traceback" not in output.text
