"""``edgewarden serve`` as a user runs it: clear errors, dev mode, SIGHUP reload."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.process_output import ProcessOutput
from webhook.certs.files import GeneratedCertificates

from .harness import FIXTURES

EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
WAIT = 20.0


def _serve(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEWARDEN, "serve", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def test_missing_certificate_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _serve("--policies", str(FIXTURES / "policies"), "--cluster-state",
                    str(FIXTURES / "cluster.yaml"), "--tls-cert", str(tmp_path / "nope.crt"),
                    "--tls-key", str(tmp_path / "nope.key"))
    assert result.returncode == 2
    assert "--tls-cert" in result.stderr and "nope.crt" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_certificate_at_all_says_what_to_pass() -> None:
    result = _serve("--policies", str(FIXTURES / "policies"), "--cluster-state",
                    str(FIXTURES / "cluster.yaml"))
    assert result.returncode == 2
    assert "--tls-cert" in result.stderr and "--dev" in result.stderr


def test_broken_policies_at_start_exit_2_naming_file_line_and_field(
    certificates: GeneratedCertificates,
) -> None:
    result = _serve("--policies", str(FIXTURES / "broken"), "--cluster-state",
                    str(FIXTURES / "cluster.yaml"), "--tls-cert", str(certificates.cert_file),
                    "--tls-key", str(certificates.key_file))
    assert result.returncode == 2
    assert re.search(r"broken\.yaml:\d+: spec\.mode", result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_dev_mode_prints_a_curl_line_that_works_and_sighup_reloads(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    shutil.copytree(FIXTURES / "policies", tmp_path / "policies")
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0", "--log-level", "info"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        curl = output.wait_for( r"(curl --cacert .*?/validate)\n").group(1)
        port = output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1)
        command = curl.replace(":0/", f":{port}/")
        answer = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert '"kind":"AdmissionReview"' in answer.stdout, answer.stderr
        assert '"allowed":true' in answer.stdout

        shutil.copy(FIXTURES / "reload" / "deny-nodeport-everywhere.yaml", tmp_path / "policies")
        process.send_signal(signal.SIGHUP)
        output.wait_for(r"policies reloaded \(SIGHUP\)")
        context = ssl.create_default_context(cafile=tmp_path / ".edgewarden-dev" / "ca.crt")
        ready = httpx.get(f"https://localhost:{port}/readyz", verify=context)
        assert ready.json()["status"] == "ready"
    finally:
        process.terminate()
        process.wait(timeout=WAIT)


def test_dev_mode_prints_curl_lines_for_an_allowed_and_a_denied_review(tmp_path: Path) -> None:
    """In a folder without ./policies (the packaged defaults serve) both printed /validate
    lines work as printed: the sample LoadBalancer is allowed, the sample NodePort in the
    dev cluster's production namespace is denied by deny-nodeport-in-production."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        allow = output.wait_for(r"(curl --cacert \S+ .*?@\S+/review\.json \S+/validate)\n")
        deny = output.wait_for(r"(curl --cacert \S+ .*?@\S+/review-deny\.json \S+/validate)\n")
        port = output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1)
        assert output.search("using the packaged default policies")
        answers = {}
        for name, line in (("allow", allow.group(1)), ("deny", deny.group(1))):
            answer = subprocess.run(line.replace(":0/", f":{port}/"), shell=True, cwd=tmp_path,
                                    capture_output=True, text=True, timeout=30)
            answers[name] = json.loads(answer.stdout)["response"]
        assert answers["allow"]["allowed"] is True
        assert answers["deny"]["allowed"] is False
        assert answers["deny"]["status"]["code"] == 403
        assert "deny-nodeport-in-production" in answers["deny"]["status"]["message"]
        cluster = tmp_path / ".edgewarden-dev" / "cluster.yaml"
        assert "environment: production" in cluster.read_text()
    finally:
        process.terminate()
        process.wait(timeout=WAIT)


def test_serve_applies_the_flavour_flag_and_serves_metrics_on_their_own_port(
    tmp_path: Path,
) -> None:
    shutil.copytree(Path(__file__).parents[2] / "policies", tmp_path / "policies")
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0", "--metrics-port", "0",
         "--internal-lb-flavour", "gcp"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        port = output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1)
        metrics_port = output.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/metrics").group(1)
        dev = tmp_path / ".edgewarden-dev"
        context = ssl.create_default_context(cafile=dev / "ca.crt")
        answer = httpx.post(f"https://localhost:{port}/mutate", verify=context,
                            content=(dev / "review.json").read_bytes(),
                            headers={"Content-Type": "application/json"}).json()
        patch = json.loads(base64.b64decode(answer["response"]["patch"]))
        assert patch == [{"op": "add", "path": "/metadata/annotations",
                          "value": {"networking.gke.io/load-balancer-type": "Internal"}}]
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'edgewarden_requests_total{endpoint="mutate",result="patched"} 1.0' in scraped
    finally:
        process.terminate()
        process.wait(timeout=WAIT)


def test_serve_answers_the_kubelets_probes_on_the_probe_port(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0", "--probe-port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        probe_port = output.wait_for(
            r"probes on http://127\.0\.0\.1:(\d+)/healthz, /livez and /readyz").group(1)
        ready = httpx.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert httpx.get(f"http://127.0.0.1:{probe_port}/livez", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=WAIT)
    assert "Traceback" not in output.text  # the probe listener stops with the server


def test_a_probe_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--dev", "--port", "0", "--probe-port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_probe_port_must_be_a_port_of_its_own() -> None:
    result = _serve("--dev", "--port", "9443", "--probe-port", "9443")
    assert result.returncode == 2
    assert "--probe-port" in result.stderr and "must differ from --port" in result.stderr
    assert "Traceback" not in result.stderr
