"""``serve --probe-port``: the kubelet's probes over plain HTTP on a listener of their own,
answering what the HTTPS port answers, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from webhook.certs.files import GeneratedCertificates
from webhook.serve.build import Runtime

from .harness import RunningServer, base_settings, load_review, start_server


@pytest.fixture(scope="module")
def server(certificates: GeneratedCertificates,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("probes")
    running = start_server(base_settings(certificates, tmp), certificates.ca_file)
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/healthz", "/livez"])
def test_liveness_is_answered_on_the_probe_port_over_plain_http(
    server: RunningServer, path: str
) -> None:
    answer = server.probe(path)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.json() == server.get(path).json()


def test_readyz_on_the_probe_port_is_the_https_ports_readyz(server: RunningServer) -> None:
    plain, https = server.probe("/readyz"), server.get("/readyz")
    assert plain.status_code == https.status_code == 200
    assert plain.json() == https.json()
    assert plain.json()["status"] == "ready"
    assert "deny-nodeport-in-production" in plain.json()["policies"]["serving"]


def test_a_head_probe_is_answered_without_a_body(server: RunningServer) -> None:
    answer = httpx.head(f"http://127.0.0.1:{server.probe_port}/readyz", timeout=10)
    assert answer.status_code == 200
    assert answer.content == b""


@pytest.mark.parametrize("path", ["/validate", "/mutate", "/metrics", "/"])
def test_the_probe_port_serves_no_admission_and_nothing_else(
    server: RunningServer, path: str
) -> None:
    """Plain HTTP must never judge a review: admissions stay on TLS (and --client-ca)."""
    review = load_review("nodeport-create-payments.json")
    answer = httpx.post(f"http://127.0.0.1:{server.probe_port}{path}", json=review, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["reason"] == "NotFound"
    assert server.metric("edgewarden_requests_total", endpoint="validate",
                         result="denied") == 0


def test_a_probe_path_takes_only_get_and_head(server: RunningServer) -> None:
    answer = httpx.post(f"http://127.0.0.1:{server.probe_port}/readyz", timeout=10)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


def test_not_ready_reasons_are_the_same_on_both_ports(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    def cache_behind(runtime: Runtime) -> None:
        runtime.state.readiness.add_check(lambda: "cluster cache of Service is stale")

    server = start_server(base_settings(certificates, tmp_path), certificates.ca_file,
                          prepare=cache_behind)
    try:
        plain, https = server.probe("/readyz"), server.get("/readyz")
        assert plain.status_code == https.status_code == 503
        assert plain.json() == https.json()
        assert plain.json()["reasons"] == ["cluster cache of Service is stale"]
        assert server.probe("/healthz").status_code == 200  # not ready is not dead
    finally:
        server.stop()
