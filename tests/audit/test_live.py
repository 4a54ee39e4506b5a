"""`audit`, `report` and `quota` against a live cluster: one paged LIST of each kind.

A small stand-in API server on 127.0.0.1 (port 0) answers the three cluster-wide LISTs
as the real one does: items without kind/apiVersion, paged with ``limit``/``continue``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from .helpers import POLICIES, run

NAMESPACES = [{"metadata": {"name": "production", "labels": {"environment": "production"}}}]
SERVICES = [
    {
        "metadata": {"name": f"lb-{i}", "namespace": "production"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]},
    }
    for i in range(3)
] + [
    {
        "metadata": {"name": "admin", "namespace": "production"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
    }
]
PATHS = {
    "/api/v1/namespaces": NAMESPACES,
    "/api/v1/services": SERVICES,
    "/apis/networking.k8s.io/v1/ingresses": [],
}


class StubApiServer(BaseHTTPRequestHandler):
    forbidden = False
    requests: list[str] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        type(self).requests.append(self.path)
        if type(self).forbidden:
            return self._send(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
        items = PATHS.get(url.path)
        if items is None:
            return self._send(404, {"kind": "Status", "code": 404})
        query = parse_qs(url.query)
        start = int(query.get("continue", ["0"])[0])
        size = 2  # small pages so paging is exercised whatever limit the client asks
        page = items[start : start + size]
        more = start + size < len(items)
        metadata = {"resourceVersion": "42", **({"continue": str(start + size)} if more else {})}
        self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": page})

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StubApiServer.forbidden = False
    StubApiServer.requests = []
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "stub",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "stub", "user": {"token": "test-token"}}],
                "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
                "current-context": "stub",
            }
        )
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    yield path
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_live_audit_lists_every_page_and_reports_the_namespace_over_its_cap(
    kubeconfig: Path,
) -> None:
    result = run("audit", "--policies", POLICIES, "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["objects"] == 4
    [over] = report["namespaceFindings"]
    assert "3 counted Services" in over["message"]
    admin = next(r for r in report["results"] if r["resource"]["name"] == "admin")
    assert admin["location"] is None
    assert ("deny-nodeport-in-production", "deny") in {
        (f["policy"], f["result"]) for f in admin["findings"]
    }
    assert any("continue=2" in request for request in StubApiServer.requests)


def test_live_quota_and_report(kubeconfig: Path, tmp_path: Path) -> None:
    result = run("quota", "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    assert "services.loadbalancers: '2'" in result.stdout
    page = tmp_path / "page.html"
    assert run("report", "--html", str(page), "--policies", POLICIES).exit_code == 0
    assert "3 / 2 over cap" in page.read_text()


def test_live_audit_without_rights_says_what_rbac_it_needs(kubeconfig: Path) -> None:
    StubApiServer.forbidden = True
    result = run("audit", "--policies", POLICIES)
    assert result.exit_code == 2
    assert "HTTP 403" in result.stderr
    assert "list on namespaces, services and ingresses" in result.stderr
