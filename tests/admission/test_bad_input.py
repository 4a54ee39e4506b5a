"""Malformed requests get 4xx with a reason, never a 500 and never a crash."""

from __future__ import annotations

import socket
import ssl

import httpx
import orjson
import pytest

from .harness import SERVICE_HOST, SNI, RunningServer, load_review


def _status(response: httpx.Response) -> dict:
    document = response.json()
    assert document["kind"] == "Status"
    return document


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_non_json_body_is_400_with_a_reason(default_server: RunningServer, path: str) -> None:
    response = default_server.post(path, b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in _status(response)["message"]


@pytest.mark.parametrize("body, reason", [
    ({"apiVersion": "v1", "kind": "Pod"}, "kind"),
    ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
     "apiVersion"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "no request"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"operation": "CREATE"}}, "request.uid"),
    ([1, 2, 3], "not a JSON object"),
])
def test_json_that_is_not_a_review_is_400(default_server: RunningServer, body: object,
                                          reason: str) -> None:
    response = default_server.post("/validate", orjson.dumps(body))
    assert response.status_code == 400
    assert reason in _status(response)["message"]


def test_wrong_content_type_is_415(default_server: RunningServer) -> None:
    body = orjson.dumps(load_review("nodeport-create-payments.json"))
    response = default_server.post("/validate", body, content_type="text/plain")
    assert response.status_code == 415


def test_json_with_charset_parameter_is_accepted(default_server: RunningServer) -> None:
    body = orjson.dumps(load_review("nodeport-create-payments.json"))
    response = default_server.post("/validate", body,
                                   content_type="application/json; charset=utf-8")
    assert response.status_code == 200


def test_body_over_the_limit_is_413(default_server: RunningServer) -> None:
    limit = default_server.runtime.state.max_body_bytes
    response = default_server.post("/validate", b" " * (limit + 1))
    assert response.status_code == 413


def test_chunked_body_over_the_limit_is_413_without_content_length(
    default_server: RunningServer,
) -> None:
    limit = default_server.runtime.state.max_body_bytes
    chunk = b" " * 65536

    def body():  # a generator makes httpx send Transfer-Encoding: chunked
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    with default_server.client() as client:
        response = client.post("/validate", content=body(),
                               headers={"content-type": "application/json"}, extensions=SNI)
    assert response.status_code == 413


def test_endless_stream_is_answered_413_before_it_ends(default_server: RunningServer) -> None:
    """No Content-Length, a body that keeps coming: counting stops it at the limit."""
    limit = default_server.runtime.state.max_body_bytes
    context = default_server.ssl_context()
    with socket.create_connection(("127.0.0.1", default_server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=SERVICE_HOST) as tls:
        head = (b"POST /validate HTTP/1.1\r\nHost: edgewarden\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        tls.sendall(head)
        sent = 0
        answer = b""
        chunk = b" " * 1_048_576
        try:
            while sent <= limit + len(chunk):
                tls.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (ssl.SSLError, OSError):
            pass  # the server may close once it has answered
        answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_unknown_path_is_404(default_server: RunningServer) -> None:
    assert default_server.post("/admit", b"{}").status_code == 404
    assert default_server.get("/nothing").status_code == 404


def test_get_on_validate_is_405(default_server: RunningServer) -> None:
    response = default_server.get("/validate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_bad_requests_are_counted(default_server: RunningServer) -> None:
    default_server.post("/mutate", b"nope")
    assert default_server.metric("edgewarden_requests_total",
                                 endpoint="mutate", result="bad_request") >= 1


def test_certificate_does_not_match_another_hostname(default_server: RunningServer) -> None:
    """The harness really verifies the name: the certificate is not valid for 127.0.0.1."""
    with default_server.client() as client, pytest.raises(httpx.ConnectError):
        client.get("/healthz")
