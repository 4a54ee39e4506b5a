"""For comparison only: the same handlers mounted as ordinary FastAPI routes (Request,
``await request.body()``, Response). Configured from the environment by benchmarks/server.py."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request, Response

from webhook.admission import handlers
from webhook.admission.review import ReviewError, encode_review, parse_review
from webhook.serve.build import build_runtime
from webhook.serve.settings import from_options

_runtime = build_runtime(from_options({
    "policies": (Path(os.environ["BENCH_POLICIES"]),),
    "cluster_state": Path(os.environ["BENCH_CLUSTER"]),
    "tls_cert": Path(os.environ["BENCH_CERT"]),
    "tls_key": Path(os.environ["BENCH_KEY"]),
    "audit_log": Path(os.devnull),
}))
_state = _runtime.state
app = FastAPI()


@app.post("/validate")
async def validate(request: Request) -> Response:
    try:
        review = parse_review(await request.body())
    except ReviewError as error:
        return Response(str(error), status_code=400)
    answer = handlers.validate(_state, review)
    return Response(encode_review(review, answer.response), media_type="application/json")
