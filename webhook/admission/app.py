"""The ASGI application: two raw admission endpoints in front of a FastAPI app.

Why raw endpoints: an admission call is one POST of a JSON body we parse once with orjson
and answer with bytes. FastAPI's request/response machinery (Request object, routing,
body re-reading, JSONResponse) costs more than the whole decision on this path (see
docs/server.md, "Performance"), so ``/validate`` and ``/mutate`` are plain ASGI callables
chosen by exact path before FastAPI sees the request, and so are the probes
(``/healthz``, ``/livez``, ``/readyz``: webhook/admission/probes.py, the same callable the
probe port serves). Everything else (``/metrics``, 404s, lifespan) is the FastAPI app,
where convenience is free. The endpoints and the router are in webhook/admission/endpoint.py.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp

from webhook.admission import exception_approval, handlers
from webhook.admission.endpoint import AdmissionEndpoint, Router
from webhook.admission.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.admission.probes import PROBE_PATHS, ProbeEndpoints
from webhook.admission.state import ServerState


def create_app(state: ServerState) -> ASGIApp:
    """The server's ASGI app; every dependency comes in through ``state``."""
    api = _management_api(state)
    probes = ProbeEndpoints(state)
    endpoints: dict[str, ASGIApp] = {
        "/validate": AdmissionEndpoint(state, "validate", handlers.validate),
        "/mutate": AdmissionEndpoint(state, "mutate", handlers.mutate),
        **{path: probes for path in PROBE_PATHS},
        exception_approval.PATH: AdmissionEndpoint(state, "mutate-policyexception",
                                                    exception_approval.approve),
    }
    return Router(state, endpoints, api)


def _management_api(state: ServerState) -> FastAPI:
    api = FastAPI(title="edgewarden", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/metrics")
    def metrics() -> Response:
        return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return api


