"""Slow bodies against `edgewarden serve` over TLS: do legitimate reviews and probes get through?

The attack of issue 18: ``--slow`` TLS connections (140) send the headers of a
``POST /validate`` with ``Content-Length: 100000`` and then nothing (``--trickle``: a byte
a second instead), for ``--seconds`` (30). A connection the server cuts (its body timeout,
or an eviction) is opened again at once, so the crowd stays the same size throughout.
Meanwhile a client sends legitimate AdmissionReviews at ``--rate`` per second over
keep-alive connections, as the API server does, and a kubelet probes ``/healthz`` and
``/readyz`` four times a second on the probe port (a new connection per probe, as the
kubelet does) and on the HTTPS port. Figures only: nothing here asserts. Run from the
repository root:

    .venv/bin/python benchmarks/slow_bodies.py
    .venv/bin/python benchmarks/slow_bodies.py --edgewarden OTHER/.venv/bin/edgewarden \
        --policies OTHER/policies --no-probe-port

The second form measures another build (e.g. one from before --probe-port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVICE_HOST = "edgewarden.edgewarden.svc"
SNI = {"sni_hostname": SERVICE_HOST}
REVIEW = ROOT / "tests" / "admission" / "fixtures" / "reviews" / "nodeport-create-payments.json"
CLUSTER = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {environment: production}}
"""
SLOW_HEAD = (b"POST /validate HTTP/1.1\r\nHost: " + SERVICE_HOST.encode() + b"\r\n"
             b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
PROBE_EVERY = 0.25


@dataclass
class Figures:
    reviews: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    probes: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))  # "where path" -> status -> count
    slow_opened: int = 0
    slow_cut: Counter[str] = field(default_factory=Counter)
    slow_refused: int = 0  # connections the server would not take

    def report(self) -> dict[str, Any]:
        total = sum(self.reviews.values())
        ordered = sorted(self.latencies)
        return {
            "reviews_sent": total,
            "reviews_200": self.reviews["200"],
            "reviews_200_share": round(self.reviews["200"] / total, 4) if total else None,
            "reviews_by_status": dict(self.reviews),
            "review_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "review_p99_ms": (round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1)
                              if ordered else None),
            "probes": {probe: dict(counts) for probe, counts in sorted(self.probes.items())},
            "slow_connections_opened": self.slow_opened,
            "slow_connections_cut_by_server": dict(self.slow_cut),
            "slow_connections_refused": self.slow_refused,
        }


async def slow_sender(port: int, context: ssl.SSLContext, until: float, trickle: bool,
                      figures: Figures) -> None:
    """One connection of the crowd, opened again whenever the server cuts it."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=SERVICE_HOST)
        except (OSError, ssl.SSLError):
            figures.slow_refused += 1
            await asyncio.sleep(0.1)
            continue
        figures.slow_opened += 1
        try:
            writer.write(SLOW_HEAD)
            await writer.drain()
            answer = b""
            while time.monotonic() < until:
                with contextlib.suppress(TimeoutError):
                    answer = await asyncio.wait_for(reader.read(256), timeout=1.0)
                    break  # an answer or EOF: the server cut us
                if trickle:
                    writer.write(b" ")
                    await writer.drain()
            else:
                continue  # held to the end
            status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
            figures.slow_cut[status] += 1
        except (OSError, ssl.SSLError):
            figures.slow_cut["reset"] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def reviewer(client: httpx.AsyncClient, body: bytes, rate: float, until: float,
                   figures: Figures) -> None:
    """Reviews at a fixed rate, each in its own task: a slow answer delays no other."""
    async def one() -> None:
        started = time.perf_counter()
        try:
            answer = await client.post("/validate", content=body, extensions=SNI)
        except httpx.HTTPError as error:
            figures.reviews[type(error).__name__] += 1
            return
        figures.reviews[str(answer.status_code)] += 1
        if answer.status_code == 200:
            figures.latencies.append(time.perf_counter() - started)

    tasks = set()
    next_at = time.monotonic()
    while next_at < until:
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


async def kubelet(https: httpx.AsyncClient, probe_port: int | None, until: float,
                  figures: Figures) -> None:
    while time.monotonic() < until:
        for path in ("/healthz", "/readyz"):
            if probe_port is not None:
                # The kubelet opens a connection per probe and closes it.
                async with httpx.AsyncClient(timeout=2) as plain:
                    try:
                        answer = await plain.get(f"http://127.0.0.1:{probe_port}{path}")
                        status = str(answer.status_code)
                    except httpx.HTTPError as error:
                        status = type(error).__name__
                figures.probes[f"probe port {path}"][status] += 1
            try:
                answer = await https.get(path, extensions=SNI, timeout=2)
                status = str(answer.status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            figures.probes[f"https port {path}"][status] += 1
        await asyncio.sleep(PROBE_EVERY)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def attack(port: int, probe_port: int | None, ca: Path, arguments: argparse.Namespace
                 ) -> Figures:
    figures = Figures()
    context = ssl.create_default_context(cafile=str(ca))
    body = REVIEW.read_bytes()
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=context,
                                 timeout=10, limits=limits,
                                 headers={"content-type": "application/json"}) as client, \
            httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=context,
                              timeout=10) as https:
        for _ in range(400):  # the server is up
            with contextlib.suppress(httpx.TransportError):
                if (await https.get("/readyz", extensions=SNI)).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit("the server did not get ready")
        until = time.monotonic() + arguments.seconds
        crowd = [asyncio.create_task(slow_sender(port, context, until, arguments.trickle,
                                                 figures)) for _ in range(arguments.slow)]
        # Let the crowd take its places before the legitimate traffic starts.
        while figures.slow_opened < arguments.slow and time.monotonic() < until:
            await asyncio.sleep(0.05)
        await asyncio.gather(
            reviewer(client, body, arguments.rate, until, figures),
            kubelet(https, probe_port, until, figures),
            *crowd,
        )
    return figures


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    edgewarden = arguments.edgewarden
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        subprocess.run([edgewarden, "certs", "generate", "--out", str(folder / "certs")],
                       check=True, capture_output=True)
        (folder / "cluster.yaml").write_text(CLUSTER)
        port = _free_port()
        probe_port = None if arguments.no_probe_port else _free_port()
        command = [
            edgewarden, "serve", "--policies", str(arguments.policies), "--port", str(port),
            "--host", "127.0.0.1", "--cluster-state", str(folder / "cluster.yaml"),
            "--tls-cert", str(folder / "certs" / "tls.crt"),
            "--tls-key", str(folder / "certs" / "tls.key"), "--log-level", "error",
            "--audit-log", "/dev/null",
        ]
        if probe_port is not None:
            command += ["--probe-port", str(probe_port)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            figures = asyncio.run(attack(port, probe_port, folder / "certs" / "ca.crt",
                                         arguments))
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {"slow": arguments.slow, "seconds": arguments.seconds, "trickle": arguments.trickle,
            "rate": arguments.rate, **figures.report()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edgewarden", default=shutil.which("edgewarden", path=str(
        ROOT / ".venv" / "bin")) or "edgewarden", help="the edgewarden command to measure")
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--slow", type=int, default=140, help="slow connections held")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="legitimate reviews a second")
    parser.add_argument("--trickle", action="store_true",
                        help="the slow senders send a byte a second instead of nothing")
    parser.add_argument("--no-probe-port", action="store_true",
                        help="for a build without serve --probe-port: probe the HTTPS port only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args()
    figures = measure(arguments)
    print(json.dumps(figures, indent=2))
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
