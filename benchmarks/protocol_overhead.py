"""What the connection limits cost per request: uvicorn's httptools protocol against
edgewarden's guarded subclass, in process, on one keep-alive connection.

The same ~2.5 KB POST is fed to each protocol through an in-memory transport and answered
by a trivial ASGI app, in interleaved rounds (so load from other processes hits both
alike); the figure is the median CPU time per request. Run from the repository root::

    .venv/bin/python benchmarks/protocol_overhead.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def per_request(make: Callable[[], asyncio.Protocol], requests: int) -> float:
    protocol = make()
    transport = Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        expected = transport.responses + 1
        protocol.data_received(REQUEST)
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
