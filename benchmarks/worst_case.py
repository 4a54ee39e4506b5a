"""The slowest reviews we can construct, against `edgewarden serve` over TLS.

For each hostile input (the largest Ingress that fits the body limit, a Service UPDATE with
100,000 externalIPs, an Ingress whose every host lacks TLS, a deeply nested object) this
measures how long /validate and /mutate take to answer, and, while they run, how long
/healthz takes (polled every 5 ms from another connection). Figures only: nothing here
asserts. Run from the repository root:

    .venv/bin/python benchmarks/worst_case.py
    .venv/bin/python benchmarks/worst_case.py --edgewarden OTHER/.venv/bin/edgewarden \
        --policies OTHER/policies

The second form measures another build (e.g. an older commit) with the same inputs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODY_LIMIT = 3 * 1024 * 1024  # the API server's own request limit
NAMESPACE = "payments"
CLUSTER = f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}, labels: {{environment: production}}}}
"""


def _review(obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = obj["kind"]
    group = "networking.k8s.io" if kind == "Ingress" else ""
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "b0000000-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
        "name": obj["metadata"]["name"], "namespace": NAMESPACE,
        "operation": "UPDATE" if old is not None else "CREATE",
        "userInfo": {"username": "bench"}, "object": obj, "oldObject": old,
    }}


def big_ingress(rules: int, covered: bool) -> dict[str, Any]:
    hosts = [f"h{i}.shop.example.com" for i in range(rules)]
    spec: dict[str, Any] = {"ingressClassName": "nginx", "rules": [
        {"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}} for h in hosts]}
    if covered:
        spec["tls"] = [{"hosts": hosts, "secretName": "tls"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "big", "namespace": NAMESPACE}, "spec": spec}


def _largest(build: Callable[[int], dict[str, Any]]) -> tuple[int, bytes]:
    """The largest n whose review still fits the body limit, and that review."""
    low, high = 1, 1
    while len(json.dumps(build(high))) < BODY_LIMIT:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if len(json.dumps(build(middle))) < BODY_LIMIT:
            low = middle
        else:
            high = middle
    return low, json.dumps(build(low)).encode()


def cases() -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    n, body = _largest(lambda n: _review(big_ingress(n, covered=True)))
    found.append((f"Ingress, {n:,} rules all with TLS (body limit)", body))
    n, body = _largest(lambda n: _review(big_ingress(n, covered=False)))
    found.append((f"Ingress, {n:,} rules none with TLS (body limit)", body))
    found.append(("Ingress, 8,000 rules with TLS (the issue's case)",
                  json.dumps(_review(big_ingress(8000, covered=True))).encode()))
    found.append(("Ingress, 2,000 rules with TLS (within the budget: judged)",
                  json.dumps(_review(big_ingress(2000, covered=True))).encode()))
    ips = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(100_000)]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "ips", "namespace": NAMESPACE},
               "spec": {"ports": [{"port": 80}], "externalIPs": ips}}
    found.append(("Service UPDATE, 100,000 externalIPs", json.dumps(
        _review(service, json.loads(json.dumps(service)))).encode()))
    deep = '{"a":' * 1000 + "{}" + "}" * 1000
    lb = {"apiVersion": "v1", "kind": "Service",
          "metadata": {"name": "deep", "namespace": NAMESPACE, "annotations": "DEEP"},
          "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    found.append(("Service, annotations 1,000 levels deep",
                  json.dumps(_review(lb)).encode().replace(b'"DEEP"', deep.encode())))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(
    edgewarden: str, folder: Path, policies: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    subprocess.run([edgewarden, "certs", "generate", "--out", str(folder / "certs")],
                   check=True, capture_output=True)
    (folder / "cluster.yaml").write_text(CLUSTER)
    port = _free_port()
    process = subprocess.Popen(
        [edgewarden, "serve", "--policies", str(policies), "--port", str(port),
         "--host", "127.0.0.1", "--cluster-state", str(folder / "cluster.yaml"),
         "--tls-cert", str(folder / "certs" / "tls.crt"),
         "--tls-key", str(folder / "certs" / "tls.key"), "--log-level", "error",
         "--audit-log", "/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, port, folder / "certs" / "ca.crt"


def _client(port: int, ca: Path) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=600,
                        headers={"content-type": "application/json"})


def _wait(client: httpx.Client) -> None:
    sni = {"sni_hostname": "edgewarden.edgewarden.svc"}
    for _ in range(400):
        try:
            if client.get("/healthz", extensions=sni).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("the server did not start")


def measure(edgewarden: str, policies: Path, only: str = "") -> list[dict[str, Any]]:
    sni = {"sni_hostname": "edgewarden.edgewarden.svc"}
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        process, port, ca = _serve(edgewarden, Path(scratch), policies)
        try:
            with _client(port, ca) as client, _client(port, ca) as prober:
                _wait(client)
                for name, body in cases():
                    if only not in name:
                        continue
                    for path in ("/validate", "/mutate"):
                        slowest = [0.0]
                        done = threading.Event()

                        def probe(prober: httpx.Client = prober, slowest: list[float] = slowest,
                                  done: threading.Event = done) -> None:
                            while not done.is_set():
                                started = time.perf_counter()
                                prober.get("/healthz", extensions=sni)
                                slowest[0] = max(slowest[0], time.perf_counter() - started)
                                time.sleep(0.005)

                        thread = threading.Thread(target=probe, daemon=True)
                        thread.start()
                        started = time.perf_counter()
                        answer = client.post(path, content=body, extensions=sni)
                        took = time.perf_counter() - started
                        done.set()
                        thread.join()
                        response = answer.json().get("response", {}) if answer.status_code == 200 \
                            else {}
                        results.append({
                            "case": name, "endpoint": path, "bytes": len(body),
                            "seconds": round(took, 3), "status": answer.status_code,
                            "allowed": response.get("allowed"),
                            "healthz_worst_ms": round(slowest[0] * 1000, 1),
                            "reason": (response.get("status") or {}).get("message", "")[:140],
                        })
                        print(f"{name:58} {path:9} {took * 1000:9.1f} ms  healthz worst "
                              f"{slowest[0] * 1000:6.1f} ms  allowed={response.get('allowed')}",
                              flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edgewarden", default=shutil.which("edgewarden", path=str(
        ROOT / ".venv" / "bin")) or "edgewarden", help="the edgewarden command to measure")
    parser.add_argument("--policies", type=Path, default=ROOT / "policies",
                        help="the policies it serves (another build's own, for a comparison)")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args()
    results = measure(arguments.edgewarden, arguments.policies, arguments.only)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
