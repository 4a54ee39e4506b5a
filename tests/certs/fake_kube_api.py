"""A test double of the Kubernetes API server: just the calls certificate management makes.

Secrets (GET/POST/PUT/PATCH) and validating/mutating webhook configurations (GET/PATCH),
with the API server's concurrency rules: every write bumps ``resourceVersion``; a create of
an existing object is ``409 AlreadyExists``; a PUT, or a merge patch carrying
``metadata.resourceVersion``, that is not at the current version is ``409 Conflict``; a
missing object is ``404 NotFound``. Served over HTTP on 127.0.0.1, port 0.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")
WEBHOOK = re.compile(
    r"^/apis/admissionregistration\.k8s\.io/v1/(validating|mutating)webhookconfigurations/([^/]+)$"
)
KINDS = {"validating": "ValidatingWebhookConfiguration", "mutating": "MutatingWebhookConfiguration"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeKubeAPI:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = 100
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.webhooks: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.patch_content_types: list[str] = []
        self.url = ""

    # --- seeding and inspection, for tests ---
    def add_webhook_configuration(self, document: dict[str, Any]) -> None:
        kind = "mutating" if document["kind"].startswith("Mutating") else "validating"
        with self.lock:
            self.webhooks[(kind, document["metadata"]["name"])] = self._stamp(document)

    def put_secret(self, namespace: str, secret: dict[str, Any]) -> None:
        secret = {"apiVersion": "v1", "kind": "Secret", **secret}
        secret["metadata"] = {**secret["metadata"], "namespace": namespace}
        with self.lock:
            self.secrets[(namespace, secret["metadata"]["name"])] = self._stamp(secret)

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        return obj

    # --- request handling ---
    def handle(self, method: str, path: str, body: Any, content_type: str) -> tuple[int, Any]:
        self.requests.append((method, path))
        with self.lock:
            if match := SECRET.match(path):
                return self._secret(method, match.group(1), match.group(2), body)
            if match := WEBHOOK.match(path):
                if method == "PATCH":
                    self.patch_content_types.append(content_type)
                return self._webhook(method, match.group(1), match.group(2), body, content_type)
        return _status(404, "NotFound", f"no route {path}")

    def _secret(self, method: str, namespace: str, name: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST" and name is None:
            key = (namespace, body["metadata"]["name"])
            if key in self.secrets:
                return _status(409, "AlreadyExists", f'secrets "{key[1]}" already exists')
            body["metadata"].pop("resourceVersion", None)
            body["metadata"]["namespace"] = namespace
            self.secrets[key] = self._stamp({"apiVersion": "v1", "kind": "Secret", **body})
            return 201, self.secrets[key]
        key = (namespace, name or "")
        current = self.secrets.get(key)
        if current is None:
            return _status(404, "NotFound", f'secrets "{name}" not found')
        if method == "GET":
            return 200, current
        if method == "PUT":
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted != current["metadata"]["resourceVersion"]:
                return _conflict("secrets", name)
            self.secrets[key] = self._stamp({"apiVersion": "v1", "kind": "Secret", **body})
            return 200, self.secrets[key]
        if method == "PATCH":
            return self._patch(self.secrets, key, body, "secrets")
        return _status(405, "MethodNotAllowed", method)

    def _webhook(
        self, method: str, kind: str, name: str, body: Any, content_type: str
    ) -> tuple[int, Any]:
        key = (kind, name)
        if key not in self.webhooks:
            return _status(404, "NotFound", f'{kind}webhookconfigurations "{name}" not found')
        if method == "GET":
            return 200, self.webhooks[key]
        if method == "PATCH":
            if content_type != "application/merge-patch+json":
                return _status(
                    415,
                    "UnsupportedMediaType",
                    f"double speaks merge patch only, got {content_type}",
                )
            return self._patch(self.webhooks, key, body, f"{kind}webhookconfigurations")
        return _status(405, "MethodNotAllowed", method)

    def _patch(
        self, store: dict, key: tuple[str, str], patch: Any, resource: str
    ) -> tuple[int, Any]:
        current = store[key]
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return _conflict(resource, key[1])
        store[key] = self._stamp(merge_patch(current, patch))
        return 200, store[key]


def _status(code: int, reason: str, message: str) -> tuple[int, Any]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _conflict(resource: str, name: str | None) -> tuple[int, Any]:
    return _status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


@contextmanager
def running(api: FakeKubeAPI) -> Iterator[FakeKubeAPI]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            code, answer = api.handle(self.command, self.path.split("?")[0], body, content_type)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
