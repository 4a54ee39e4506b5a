"""Test harness: the real server (server.py: uvicorn + TLS) on 127.0.0.1, called as the API
server would.

The test CA issues a certificate for ``edgewarden.edgewarden.svc`` only; the client
connects to 127.0.0.1 and verifies that name through httpx's ``sni_hostname`` request
extension (the name used for SNI and for hostname checking), so no /etc/hosts entry and
no certificate for an IP address is needed.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
import yaml

from tests.support import eventually
from webhook.certs.files import GeneratedCertificates
from webhook.serve.build import Runtime, build_runtime, uvicorn_server
from webhook.serve.root import serve
from webhook.serve.settings import ServeSettings, from_options

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[2]
DEFAULT_POLICIES = REPO / "policies"
SERVICE_HOST = "edgewarden.edgewarden.svc"
START_TIMEOUT = 15.0


@dataclass
class RunningServer:
    runtime: Runtime
    port: int
    ca_file: Path
    audit_log: Path | None
    _thread: threading.Thread
    _server: Any
    probe_port: int = 0  # the plain-HTTP probe listener (serve --probe-port)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(), timeout=10)

    def async_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=64)
        return httpx.AsyncClient(base_url=self.base_url, verify=self.ssl_context(),
                                 timeout=20, limits=limits)

    def post(self, path: str, body: bytes | dict[str, Any],
             content_type: str = "application/json") -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        with self.client() as client:
            return client.post(path, content=content, headers={"content-type": content_type},
                               extensions=SNI)

    def get(self, path: str) -> httpx.Response:
        with self.client() as client:
            return client.get(path, extensions=SNI)

    def probe(self, path: str) -> httpx.Response:
        """GET on the probe port, plain HTTP, as the kubelet probes."""
        return httpx.get(f"http://127.0.0.1:{self.probe_port}{path}", timeout=10)

    def review(self, path: str, review: dict[str, Any]) -> dict[str, Any]:
        """POST a review; assert the HTTP layer accepted it; return ``response``."""
        answer = self.post(path, review)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["apiVersion"] == "admission.k8s.io/v1"
        assert document["kind"] == "AdmissionReview"
        assert document["response"]["uid"] == review["request"]["uid"]
        response: dict[str, Any] = document["response"]
        return response

    def audit_lines(self) -> list[dict[str, Any]]:
        assert self.audit_log is not None
        if not self.audit_log.exists():
            return []
        return [orjson.loads(line) for line in self.audit_log.read_bytes().splitlines()]

    def metric(self, name: str, **labels: str) -> float:
        """One sample from /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        assert not self._thread.is_alive(), "server did not stop"


SNI = {"sni_hostname": SERVICE_HOST}


def start_server(settings: ServeSettings, ca_file: Path,
                 prepare: Callable[[Runtime], object] | None = None, *,
                 clock: Callable[[], float] = time.time) -> RunningServer:
    """Build and start the server exactly as ``edgewarden serve`` does, on port 0;
    ``prepare`` adds to the runtime first (as serve attaches the controllers); ``clock`` is
    what reviews are judged at."""
    runtime = build_runtime(settings, clock=clock)
    if prepare is not None:
        prepare(runtime)
    server = uvicorn_server(runtime)
    sock, probe_sock = _bound_socket(), _bound_socket()
    port = sock.getsockname()[1]

    def run() -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(runtime, server, sockets=[sock], probe_socket=probe_sock))

    thread = threading.Thread(target=run, name="edgewarden-test-server", daemon=True)
    thread.start()
    running = RunningServer(runtime, port, ca_file, settings.server.decision_log, thread, server,
                            probe_port=probe_sock.getsockname()[1])

    # --client-ca with --probe-port refuses a caller without a certificate at the handshake:
    # ask the probe listener then, as the kubelet does.
    probe_apart = (settings.certificates.client_ca is not None
                   and settings.server.probe_port is not None)

    def healthy() -> bool:
        assert thread.is_alive(), "the server stopped before it answered /healthz"
        try:
            if probe_apart:
                return running.probe("/healthz").status_code == 200
            return running.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(healthy, timeout=START_TIMEOUT, interval=0.05, what="/healthz to answer")
    except AssertionError:  # TimedOut, or the thread died
        running.stop()
        raise
    return running


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def base_settings(certificates: GeneratedCertificates, tmp_path: Path,
                  **overrides: Any) -> ServeSettings:
    """What a test serves with: ``overrides`` by serve's option names (webhook/serve/
    settings.py maps them onto the nested settings, as it does for the CLI)."""
    return from_options({
        "policies": (DEFAULT_POLICIES,),
        "host": "127.0.0.1",
        "port": 0,
        "tls_cert": certificates.cert_file,
        "tls_key": certificates.key_file,
        "cluster_state": FIXTURES / "cluster.yaml",
        "audit_log": tmp_path / "audit.jsonl",
        "policy_poll_seconds": 0.1,
        "log_level": "warning",
        **overrides,
    })


# ---- AdmissionReview bodies ----------------------------------------------------------

_uid_counter = iter(range(1, 10**9))


def load_object(relative: str) -> dict[str, Any]:
    """A Kubernetes object from tests/admission/fixtures (YAML)."""
    document: dict[str, Any] = yaml.safe_load((FIXTURES / relative).read_text())
    return document


def make_review(operation: str, namespace: str, obj: dict[str, Any] | None,
                old_object: dict[str, Any] | None = None, *, dry_run: bool = False,
                username: str = "jane@example.com") -> dict[str, Any]:
    """An AdmissionReview v1 shaped as the API server sends it for Services/Ingresses."""
    subject = obj if obj is not None else old_object
    assert subject is not None
    kind = subject["kind"]
    group, version, resource = (("networking.k8s.io", "v1", "ingresses") if kind == "Ingress"
                                else ("", "v1", "services"))
    subject_copy = copy.deepcopy(subject)
    subject_copy.setdefault("metadata", {}).setdefault("namespace", namespace)
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                    "DELETE": "DeleteOptions"}[operation]
    uid = f"00000000-0000-4000-8000-{next(_uid_counter):012d}"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": subject_copy["metadata"].get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": username, "uid": "u-1",
                         "groups": ["developers", "system:authenticated"]},
            "object": subject_copy if obj is not None else None,
            "oldObject": (copy.deepcopy(old_object) if old_object is not None else None),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
        },
    }


def load_review(name: str) -> dict[str, Any]:
    """A complete AdmissionReview captured as the API server sends it (fixtures/reviews)."""
    review: dict[str, Any] = orjson.loads((FIXTURES / "reviews" / name).read_bytes())
    return review
