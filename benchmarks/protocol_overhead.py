"""What the connection limits cost per request: uvicorn's httptools protocol against
edgewarden's guarded subclass, in process, on one keep-alive connection.

The same ~2.5 KB POST is fed to each protocol through an in-memory transport and answered
by a trivial ASGI app, in interleaved rounds (so load from other processes hits both
alike); the figure is the median CPU time per request. Run from the repository root::

    .venv/bin/python benchmarks/protocol_overhead.py [--requests 20000] [--rounds 7]

``--app edgewarden`` instead answers with edgewarden's own app (the repository's policies,
benchmarks/fixtures/cluster.yaml) through the guarded protocol, run as uvicorn runs any
app (a task per request) against at once (``eager_paths``, docs/http.md); ``--path
/mutate`` sends the LoadBalancer review of benchmarks/fixtures instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
import uvloop  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from webhook.admission.http_protocol import GuardedHttpProtocol  # noqa: E402
from webhook.admission.settings import ConnectionSettings  # noqa: E402

BODY = (ROOT / "benchmarks" / "fixtures" / "validate-review.json").read_bytes()
REQUEST = (b"POST /validate HTTP/1.1\r\nHost: edgewarden.edgewarden.svc:443\r\n"
           b"User-Agent: kube-apiserver-admission\r\nAccept: application/json, */*\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n"
           b"Accept-Encoding: gzip\r\n\r\n" % len(BODY)) + BODY


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


# As webhook/admission/app.py names its own endpoints: the guarded protocol runs them at once.
app.eager_paths = frozenset({"/validate"})  # type: ignore[attr-defined]


class Transport(asyncio.Transport):
    """Enough of a transport for the protocol: counts the responses written."""

    def __init__(self) -> None:
        super().__init__()
        self.responses = 0
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data[:9]) == b"HTTP/1.1 ":
            self.responses += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("10.0.0.1", 40000), "sockname": ("10.0.0.2", 8443)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Tracker:
    def established(self, connection: Any) -> None: ...

    def closed(self, connection: Any) -> None: ...

    def hit(self, limit: str, peer: str) -> None:
        raise AssertionError(f"limit hit: {limit}")

    # The count of requests in flight, as the listener keeps it (one at a time here).
    requests_in_flight = 0

    def admit_request(self) -> bool:
        self.requests_in_flight += 1
        return True

    def request_done(self) -> None:
        self.requests_in_flight -= 1


async def per_request(make: Callable[[], asyncio.Protocol], requests: int,
                      request: bytes = REQUEST) -> float:
    protocol = make()
    transport = Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        expected = transport.responses + 1
        protocol.data_received(request)
        await asyncio.sleep(0)  # the loop turns once per read, as it does serving
        while transport.responses < expected:
            await asyncio.sleep(0)
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--app", choices=("trivial", "edgewarden"), default="trivial")
    parser.add_argument("--path", choices=("/validate", "/mutate"), default="/validate")
    args = parser.parse_args()
    if args.app == "edgewarden":
        return edgewarden_app(args)
    # As the webhook port is configured (webhook/serve/build.py): no proxy-headers wrapper.
    config = uvicorn.Config(app, http="httptools", lifespan="off", log_config=None,
                            access_log=False, proxy_headers=False)
    config.load()
    state = ServerState()

    def plain() -> asyncio.Protocol:
        return HttpToolsProtocol(config=config, server_state=state, app_state={})

    def guarded() -> asyncio.Protocol:
        return GuardedHttpProtocol(config=config, server_state=state, app_state={},
                                   settings=ConnectionSettings(), tracker=Tracker())

    results: dict[str, list[float]] = {"uvicorn httptools": [], "edgewarden guarded": []}

    async def run() -> None:
        for _ in range(args.rounds):
            results["uvicorn httptools"].append(await per_request(plain, args.requests))
            results["edgewarden guarded"].append(await per_request(guarded, args.requests))

    uvloop.run(run())
    base = statistics.median(results["uvicorn httptools"])
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:20} {median * 1e6:7.2f} us/request (median of {args.rounds} rounds "
              f"of {args.requests}), {median / base:.0%} of uvicorn's")
    return 0


def edgewarden_app(args: argparse.Namespace) -> int:
    import gc
    import tempfile

    from webhook.certs.files import generate_certificates
    from webhook.serve.build import build_runtime
    from webhook.serve.settings import from_options

    fixtures = ROOT / "benchmarks" / "fixtures"
    body = (fixtures / ("validate-review.json" if args.path == "/validate"
                        else "mutate-review.json")).read_bytes()
    request = (b"POST %s HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (args.path.encode(), len(body))) + body
    with tempfile.TemporaryDirectory() as folder:
        certificates = generate_certificates(Path(folder), service="edgewarden",
                                             namespace="edgewarden")
        served = build_runtime(from_options({
            "policies": (ROOT / "policies",), "cluster_state": fixtures / "cluster.yaml",
            "tls_cert": certificates.cert_file, "tls_key": certificates.key_file,
            "audit_log": Path(os.devnull)})).app

    async def as_a_task(scope: Any, receive: Any, send: Any) -> None:
        await served(scope, receive, send)

    as_a_task.eager_paths = frozenset()  # type: ignore[attr-defined]
    # As webhook/serve/root.py leaves the collector once the server is built.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    state = ServerState()

    def guarded(application: Any) -> Callable[[], asyncio.Protocol]:
        config = uvicorn.Config(application, http="httptools", lifespan="off",
                                log_config=None, access_log=False, proxy_headers=False)
        config.load()
        return lambda: GuardedHttpProtocol(config=config, server_state=state, app_state={},
                                           settings=ConnectionSettings(), tracker=Tracker())

    results: dict[str, list[float]] = {"a task per request": [], "run at once": []}

    async def run() -> None:
        for _ in range(args.rounds):
            results["a task per request"].append(
                await per_request(guarded(as_a_task), args.requests, request))
            results["run at once"].append(
                await per_request(guarded(served), args.requests, request))

    uvloop.run(run())
    base = statistics.median(results["a task per request"])
    for name, times in results.items():
        median = statistics.median(times)
        print(f"edgewarden {args.path} {name:20} {median * 1e6:7.2f} us/request (median of "
              f"{args.rounds} rounds of {args.requests}), {median / base:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
