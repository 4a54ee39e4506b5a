"""Slow bodies starve no one (issue 18): 140 TLS connections that send their headers with
``Content-Length: 100000`` and then nothing, held open while a client sends legitimate
AdmissionReviews and the kubelet probes. Before, they held every one of the 128
``--max-concurrent-requests`` places until the body timeout: 131 of 133 reviews and 74 of
76 ``/healthz`` probes got 429.

The test holds the slow connections for a few seconds; benchmarks/slow_bodies.py runs the
full 30 s scenario against a server process and prints the figures.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx

from tests.support import eventually
from webhook.admission.settings import ConnectionSettings
from webhook.certs.files import GeneratedCertificates

from .harness import SERVICE_HOST, SNI, RunningServer, base_settings, load_review, start_server

SLOW_CONNECTIONS = 140
HOLD_SECONDS = 3.0  # how long the reviews and probes go on while the slow bodies wait
MIN_REVIEWS = 30  # and at least this many, however slow the machine
SLOW_HEAD = (b"POST /validate HTTP/1.1\r\nHost: edgewarden.edgewarden.svc\r\n"
             b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")


def open_slow_bodies(server: RunningServer, stack: contextlib.ExitStack) -> list[ssl.SSLSocket]:
    context = server.ssl_context()
    connections = []
    for _ in range(SLOW_CONNECTIONS):
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        tls = stack.enter_context(context.wrap_socket(raw, server_hostname=SERVICE_HOST))
        tls.sendall(SLOW_HEAD)
        connections.append(tls)
    return connections


def test_legitimate_reviews_and_every_probe_are_answered_while_140_bodies_never_come(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    # The shipped limits, with a body timeout the slow senders outlast during the test.
    limits = replace(ConnectionSettings(), body_timeout=60.0)
    assert limits.max_concurrent_requests < SLOW_CONNECTIONS
    server = start_server(base_settings(certificates, tmp_path, connections=limits),
                          certificates.ca_file)
    review = load_review("nodeport-create-payments.json")
    reviews: Counter[int] = Counter()
    probes: Counter[tuple[str, int]] = Counter()
    try:
        with contextlib.ExitStack() as stack:
            slow = open_slow_bodies(server, stack)
            tasks = server._server.server_state.tasks
            eventually(lambda: len(tasks) >= SLOW_CONNECTIONS,
                       what="every slow connection waiting for its body")
            with server.client() as client, httpx.Client(timeout=10) as kubelet:
                until = time.monotonic() + HOLD_SECONDS
                while time.monotonic() < until or sum(reviews.values()) < MIN_REVIEWS:
                    answer = client.post("/validate", json=review, extensions=SNI)
                    reviews[answer.status_code] += 1
                    for path in ("/healthz", "/readyz"):
                        plain = kubelet.get(f"http://127.0.0.1:{server.probe_port}{path}")
                        probes[(f"probe port {path}", plain.status_code)] += 1
                        https = client.get(path, extensions=SNI)
                        probes[(f"https port {path}", https.status_code)] += 1
            # The scenario held to the end: the slow senders were never answered or cut.
            assert len(tasks) >= SLOW_CONNECTIONS
            assert len(slow) == SLOW_CONNECTIONS
    finally:
        server.stop()

    total = sum(reviews.values())
    assert total >= MIN_REVIEWS
    assert reviews[200] >= 0.95 * total, reviews
    assert probes, "no probe was sent"
    assert all(code == 200 for _where, code in probes), probes
