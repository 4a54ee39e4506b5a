"""What claims add to a CREATE through a real API server, and what they write.

Two sets of 3 ``edgewarden serve`` replicas behind HAProxy (the harness of
tests/replicas), on one control plane (tests/kube), judging the same policies: one with
claims (the default), one with ``--no-claims``. Each set is sent only its own namespaces.
Measured, one client and one request at a time, in alternating blocks so that load from
elsewhere on the machine hits both alike:

* an Ingress CREATE with a new host (``unique-ingress-hosts``: a Key claim on the host);
* a Service CREATE counted by a ``limit`` with a ``where`` (a Count claim).

Then the writes: the API server's ``apiserver_request_total`` for ``claims`` by verb,
from before the creates of the claims set to after its objects were confirmed, deleted
and their claims released, divided by the creates admitted.

Run from the repository root after scripts/kube-binaries, with haproxy installed::

    .venv/bin/python benchmarks/claims.py --creates 200

Figures only: nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kube.binaries import locate  # noqa: E402
from kube.controlplane import ControlPlane  # noqa: E402
from kube.wait import until  # noqa: E402
from replicas.fixtures import (  # noqa: E402
    WEBHOOK_NAMESPACE,
    ReplicaSet,
    WebhookCertificates,
    haproxy_binary,
    install_rbac,
)

NO_AUDIT = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
LIMIT = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: limit-public-services}
spec:
  mode: Enforce
  failurePolicy: Fail
  match: {kinds: [Service], operations: [CREATE, UPDATE]}
  limit:
    where: >-
      has(object.metadata.labels) && 'exposure' in object.metadata.labels
      && object.metadata.labels['exposure'] == 'public'
    max: 100000
"""
CLAIM_METRIC = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="claims")(?=[^}]*verb="(\w+)")[^}]*\} (\S+)$')


class Api:
    """JSON on one keep-alive TLS connection, as admin."""

    def __init__(self, plane: ControlPlane) -> None:
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        context.load_cert_chain(plane.workdir / "pki" / "admin.crt",
                                plane.workdir / "pki" / "admin.key")
        self._connection = http.client.HTTPSConnection("127.0.0.1", plane.port,
                                                       context=context, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        self._connection.request(method, path, json.dumps(body) if body else None,
                                 {"Content-Type": "application/json"})
        response = self._connection.getresponse()
        response.read()
        return response.status


def ingress(name: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "web", "port": {"number": 80}}}}]}}]}}


def public_service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"exposure": "public"}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def timed(api: Api, path: str, bodies: list[dict[str, Any]]) -> list[float]:
    samples = []
    for body in bodies:
        started = time.perf_counter()
        status = api.call("POST", path, body)
        samples.append(time.perf_counter() - started)
        if status != 201:
            raise RuntimeError(f"create {body['metadata']['name']}: HTTP {status}")
    return samples


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    return {"p50": round(pick(0.50) * 1000, 2), "p99": round(pick(0.99) * 1000, 2),
            "mean": round(statistics.mean(ordered) * 1000, 2)}


def claim_requests(plane: ControlPlane) -> dict[str, float]:
    text = plane.kubectl("get", "--raw", "/metrics").stdout
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = CLAIM_METRIC.match(line)
        if match:
            found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(2))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=200, help="per kind and series")
    parser.add_argument("--blocks", type=int, default=4)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="edgewarden-claims-bench-"))
    folder = workdir / "policies"
    folder.mkdir()
    (folder / "limit-public-services.yaml").write_text(LIMIT)
    for name in ("unique-ingress-hosts.yaml", "deny-nodeport-in-production.yaml"):
        shutil.copy(ROOT / "policies" / name, folder / name)
    plane = ControlPlane(locate(), workdir / "kube", controller_manager=False,
                         audit_policy=NO_AUDIT)
    plane.start()
    sets: dict[str, ReplicaSet] = {}
    try:
        kubeconfig = install_rbac(plane)
        certificates = WebhookCertificates.generate(workdir / "tls")
        haproxy = haproxy_binary()
        for label, extra in (("claims", ()), ("no-claims", ("--no-claims",))):
            sets[label] = ReplicaSet(plane, workdir / label, certificates, kubeconfig,
                                     serve_args=extra, policies=[folder],
                                     haproxy=haproxy).start()
        namespaces = {label: s.namespace() for label, s in sets.items()}
        api = Api(plane)
        samples: dict[tuple[str, str], list[float]] = {}
        per_block = max(1, args.creates // args.blocks)
        before = claim_requests(plane)
        made: dict[str, list[tuple[str, str]]] = {label: [] for label in sets}
        for block in range(args.blocks):
            print(f"block {block + 1}/{args.blocks}...", flush=True)
            for label, namespace in namespaces.items():
                tag = uuid.uuid4().hex[:6]
                ingresses = [ingress(f"i-{tag}-{i}", f"h-{tag}-{i}.example.com")
                             for i in range(per_block)]
                services = [public_service(f"s-{tag}-{i}") for i in range(per_block)]
                samples.setdefault((label, "Ingress"), []).extend(timed(
                    api, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
                    ingresses))
                samples.setdefault((label, "Service"), []).extend(timed(
                    api, f"/api/v1/namespaces/{namespace}/services", services))
                made[label] += [(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/"
                                 f"{b['metadata']['name']}", "") for b in ingresses]
                made[label] += [(f"/api/v1/namespaces/{namespace}/services/"
                                 f"{b['metadata']['name']}", "") for b in services]

        def entries(state: str) -> int:
            listed = json.loads(plane.kubectl("-n", WEBHOOK_NAMESPACE, "get", "claims", "-o",
                                              "json").stdout)["items"]
            return sum(1 for c in listed for e in c["spec"]["entries"] if e["state"] == state)

        admitted = len(made["claims"])
        until(lambda: entries("Held") == admitted, "every claim confirmed", 300.0, interval=1)
        for path, _ in made["claims"]:
            api.call("DELETE", path)
        until(lambda: entries("Held") == 0, "every claim released", 300.0, interval=1)
        after = claim_requests(plane)
    finally:
        for replicas in sets.values():
            replicas.stop()
        plane.stop()
    delta = {verb: after.get(verb, 0.0) - before.get(verb, 0.0)
             for verb in sorted(set(after) | set(before))}
    writes = sum(v for verb, v in delta.items() if verb in ("POST", "PUT", "PATCH", "DELETE"))
    print()
    print(f"{'CREATE through 3 replicas':<44} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in ("Ingress", "Service"):
        for label in ("no-claims", "claims"):
            figures = percentiles(samples[(label, kind)])
            print(f"{kind + ', ' + label:<44} {figures['p50']:>8.2f} {figures['p99']:>8.2f}")
        added = {q: percentiles(samples[("claims", kind)])[q]
                 - percentiles(samples[("no-claims", kind)])[q] for q in ("p50", "p99")}
        print(f"{'  added by its claim':<44} {added['p50']:>8.2f} {added['p99']:>8.2f}")
    print(f"\nclaim requests by verb for {admitted} admitted creates, confirmed, deleted and "
          f"released: {json.dumps(delta)}")
    print(f"writes per admitted create: {writes / admitted:.2f}")


if __name__ == "__main__":
    main()
