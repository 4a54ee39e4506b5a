"""CPU per request of edgewarden's own layer: the ASGI app ``serve`` runs, called in
process as uvicorn calls it (scope, receive, send), with no socket, TLS or HTTP parser.

What a request costs under load (benchmarks/server.py's "CPU us/req") is this plus
uvicorn's protocol, TLS and the kernel, which the raw-ASGI ceiling pays too; so this is the
part of the gap to the ceiling that is ours. The app is built as ``serve`` builds it
(webhook/serve/build.py) over the shipped policies and benchmarks/fixtures/cluster.yaml,
and answers the fixture reviews server.py sends. Run from the repository root, or from a
copy of it (benchmarks/compiled_engine.py makes compiled ones) to measure that copy::

    .venv/bin/python benchmarks/app_cpu.py [--requests 20000] [--rounds 3]

Figures only: nothing here asserts. Each figure is the lowest of the rounds' process CPU
per request (the least disturbed by anything else on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhook.certs.files import generate_certificates  # noqa: E402
from webhook.serve.build import build_runtime  # noqa: E402
from webhook.serve.settings import from_options  # noqa: E402

FIXTURES = ROOT / "benchmarks" / "fixtures"
ENDPOINTS = ("validate", "mutate")


async def _round(app: Any, endpoint: str, body: bytes, requests: int) -> float:
    scope = {"type": "http", "method": "POST", "path": f"/{endpoint}", "headers": [
        (b"host", b"edgewarden"), (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode())]}
    message = {"type": "http.request", "body": body, "more_body": False}
    answers: list[Any] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        answers.append(sent)

    started = time.process_time()
    for _ in range(requests):
        await app(scope, receive, send)
    elapsed = time.process_time() - started
    status = answers[-2]["status"]
    if status != 200:
        raise SystemExit(f"/{endpoint} answered {status}, not 200")
    return elapsed / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgewarden-app-cpu-") as name:
        folder = Path(name)
        certificates = generate_certificates(folder / "certs", service="edgewarden",
                                             namespace="edgewarden")
        settings = from_options({
            "policies": (ROOT / "policies",), "host": "127.0.0.1", "port": 0,
            "tls_cert": certificates.cert_file, "tls_key": certificates.key_file,
            "cluster_state": FIXTURES / "cluster.yaml", "audit_log": folder / "audit.jsonl",
            "log_level": "warning"})
        app = build_runtime(settings).app
        # The loop serve runs (uvicorn's "auto" picks uvloop when it is installed).
        loop: asyncio.AbstractEventLoop
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        try:
            figures = {}
            for endpoint in ENDPOINTS:
                body = (FIXTURES / f"{endpoint}-review.json").read_bytes()
                loop.run_until_complete(_round(app, endpoint, body, 1000))  # warm
                figures[endpoint] = min(
                    loop.run_until_complete(_round(app, endpoint, body, args.requests))
                    for _ in range(args.rounds))
        finally:
            loop.close()
    compiled = str(sys.modules["webhook.policy.engine.evaluation"].__file__).endswith(".so")
    print(f"our layer's CPU per request, in process ({'compiled' if compiled else 'pure'}"
          f" Python; lowest of {args.rounds} rounds of {args.requests:,}):")
    for endpoint, micros in figures.items():
        print(f"  /{endpoint:<9} {micros:6.1f} µs")


if __name__ == "__main__":
    main()
