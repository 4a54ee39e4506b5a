"""The kubelet's probes: ``/healthz``, ``/livez`` and ``/readyz``, one ASGI callable.

The same callable answers on the HTTPS port (for ``serve --dev`` and anyone who probed
there before) and on the plain-HTTP probe port (``serve --probe-port``), which has its own
listener and connection table, as kube-apiserver's and controller-runtime's health
endpoints do: a flood on the webhook port cannot make a pod look dead or unready. On
either port a probe never counts toward ``--max-concurrent-requests``
(``http_protocol.is_probe``), so it is never answered 429.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from webhook.admission.state import ServerState

HEALTHZ, LIVEZ, READYZ = "/healthz", "/livez", "/readyz"
PROBE_PATHS = frozenset({HEALTHZ, LIVEZ, READYZ})
PROBE_METHODS = frozenset({"GET", "HEAD"})
_ALIVE = orjson.dumps({"status": "ok"})


def readiness(state: ServerState) -> tuple[int, dict[str, Any]]:
    """What ``/readyz`` answers: 200 and the policies, or 503 with every reason; then the
    details the parts add (the supervised tasks, the Policy objects' source)."""
    reasons = state.not_ready()
    policies = state.policy_status()
    details = state.details()
    if reasons:
        return 503, {"status": "not ready", "reasons": reasons, "policies": policies, **details}
    return 200, {"status": "ready", "policies": policies, **details}


class ProbeEndpoints:
    """``GET``/``HEAD`` of the probe paths; anything else on the probe port is a 404."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or WebSocket here
        path, method = scope["path"], scope["method"]
        if path not in PROBE_PATHS:
            await _send(send, 404, _status_body(
                404, "NotFound", "not found: this port serves /healthz, /livez and /readyz"))
            return
        if method not in PROBE_METHODS:
            await _send(send, 405, _status_body(405, "MethodNotAllowed",
                                                f"only GET and HEAD are allowed on {path}"),
                        [(b"allow", b"GET, HEAD")])
            return
        if path == READYZ:
            code, document = readiness(self.state)
            await _send(send, code, orjson.dumps(document))
            return
        # Alive while the event loop answers: a wedged loop fails this probe too.
        await _send(send, 200, _ALIVE)


def _status_body(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": message, "reason": reason, "code": code})


async def _send(send: Send, code: int, body: bytes,
                extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    # uvicorn leaves the body out of an answer to HEAD.
    await send({"type": "http.response.body", "body": body})
