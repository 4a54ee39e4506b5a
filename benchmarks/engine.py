"""Microseconds per engine decision: the six default policies, and 100 policies.

Run: .venv/bin/python benchmarks/engine.py [--reviews 20000] [--watched-cache]
Pinned to one core; reports median and p99 over every review (no warm-up in the figures
beyond a first pass that is discarded). Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from webhook.admission.review import parse_review  # noqa: E402
from webhook.cluster.memory import MemoryCluster  # noqa: E402
from webhook.policy.engine.evaluation import Engine  # noqa: E402
from webhook.policy.load.loader import load_policies  # noqa: E402
from webhook.policy.model.policy import PolicySet  # noqa: E402
from webhook.policy.model.request import AdmissionRequest, make_request  # noqa: E402

NAMESPACES = [
    ("payments", {"environment": "production", "team": "payments"}),
    ("shop", {"environment": "prod"}),
    ("dev", {"environment": "development"}),
    ("public", {"edgewarden.dev/public-loadbalancers": "allowed"}),
]


def realistic_service(name: str, namespace: str, svc_type: str) -> dict[str, Any]:
    """A Service as the API server sends it: labels, annotations, managedFields (~2.5 KB)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "6f1c7b6e-1f5e-4c1f-9a0e-3f8f5b2d9c41",
            "creationTimestamp": "2026-11-26T10:00:00Z",
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": f"{name}-prod",
                "app.kubernetes.io/version": "4.2.1",
                "app.kubernetes.io/component": "api",
                "app.kubernetes.io/part-of": "checkout",
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": f"{name}-1.8.3",
            },
            "annotations": {
                "meta.helm.sh/release-name": f"{name}-prod",
                "meta.helm.sh/release-namespace": namespace,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
            },
            "managedFields": [
                {
                    "manager": "helm",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-11-26T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:annotations": {".": {}, "f:meta.helm.sh/release-name": {}},
                            "f:labels": {".": {}, "f:app.kubernetes.io/name": {}},
                        },
                        "f:spec": {
                            "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}}},
                            "f:selector": {},
                            "f:type": {},
                        },
                    },
                }
            ],
        },
        "spec": {
            "type": svc_type,
            "selector": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": f"{name}-prod",
            },
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
            ],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
    }


def realistic_ingress(name: str, namespace: str, tls: bool) -> dict[str, Any]:
    hosts = [f"{name}.example.com", f"api.{name}.example.com"]
    spec: dict[str, Any] = {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": name, "port": {"number": 80}}},
                        }
                    ]
                },
            }
            for host in hosts
        ],
    }
    if tls:
        spec["tls"] = [{"hosts": hosts, "secretName": f"{name}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": spec,
    }


class _Informer:
    """What KubeCluster.synced asks of each watched kind (webhook/cluster/kube_informer.py)."""

    def __init__(self) -> None:
        self.last_event: float | None = time.monotonic()
        self.settled = True

    def fresh(self, now: float) -> bool:
        last = self.last_event
        return self.settled and last is not None and now - last <= 3600.0


class WatchedCluster(MemoryCluster):
    """The in-memory cluster whose freshness costs what the API-backed cache's does: a
    clock read and each of 9 watched kinds asked (Namespaces, Services, Ingresses, the four
    route kinds, Policies, PolicyExceptions), every time it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self._informers = {index: _Informer() for index in range(9)}

    @property
    def synced(self) -> bool:
        now = time.monotonic()
        return all(i.fresh(now) for i in list(self._informers.values()))


def build_cluster(watched: bool = False) -> MemoryCluster:
    cluster = WatchedCluster() if watched else MemoryCluster()
    for name, labels in NAMESPACES:
        cluster.add(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )
        cluster.add(realistic_service(f"{name}-lb", name, "LoadBalancer"))
        for i in range(20):
            cluster.add(realistic_service(f"{name}-svc{i}", name, "ClusterIP"))
    return cluster


def build_requests(count: int, seed: int = 7, admitted: bool = True) -> list[AdmissionRequest]:
    rng = random.Random(seed)
    requests = []
    for i in range(count):
        namespace = rng.choice(NAMESPACES)[0]
        roll = rng.random()
        if roll < 0.55:
            obj = realistic_service(
                f"svc-{i}",
                namespace,
                rng.choice(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"]),
            )
        else:
            obj = realistic_ingress(f"ing-{i}", namespace, tls=rng.random() < 0.5)
        offline = make_request("CREATE", obj, namespace=namespace, uid=f"bench-{i}")
        requests.append(as_admitted(offline) if admitted else offline)
    return requests


def as_admitted(request: AdmissionRequest) -> AdmissionRequest:
    """``request`` as the server builds it: from an AdmissionReview's bytes, as the API
    server sends them (``oldObject: null`` on CREATE), so the engine has what the body
    tells (AdmissionRequest.facts: its searches of the body, made when the engine asks, are
    in the figures). Parsing is not (benchmarks/server.py measures the whole path)."""
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {**request.raw, "object": request.object,
                          "oldObject": request.old_object}}
    return parse_review(orjson.dumps(review)).request


def hundred_policies(defaults: PolicySet) -> PolicySet:
    """The six defaults plus 94 realistic label/annotation policies across both kinds."""
    documents = []
    for i in range(94):
        kind = "Service" if i % 2 == 0 else "Ingress"
        documents.append(
            f"""
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {{name: org-rule-{i}}}
spec:
  mode: {"Audit" if i % 3 else "Warn"}
  match:
    kinds: [{kind}]
    namespaceSelector:
      matchExpressions: [{{key: environment, operator: In, values: [production, prod]}}]
  matchConditions:
    - {{name: labelled, expression: "has(object.metadata.labels)"}}
  validations:
    - expression: >-
        'app.kubernetes.io/name' in object.metadata.labels || 'app' in object.metadata.labels
      message: "rule {i}: label your {kind}s"
"""
        )
    with tempfile.TemporaryDirectory(prefix="edgewarden-bench-") as folder:
        generated = Path(folder) / "generated.yaml"
        generated.write_text("---".join(documents))
        extra = load_policies(generated)
    return PolicySet(policies=defaults.policies + extra.policies)


def measure(
    engine: Engine, cluster: MemoryCluster, requests: list[AdmissionRequest]
) -> dict[str, float]:
    for request in requests[:2000]:  # first pass: imports, caches, branch predictors
        engine.evaluate(request, cluster)
    samples = []
    clock = time.perf_counter_ns
    for request in requests:
        started = clock()
        engine.evaluate(request, cluster)
        samples.append((clock() - started) / 1000)
    samples.sort()
    return {
        "reviews": len(samples),
        "median_us": statistics.median(samples),
        "p99_us": samples[int(len(samples) * 0.99) - 1],
        "mean_us": statistics.fmean(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=int, default=20000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--offline", action="store_true",
                        help="requests as check/audit build them (no body: the engine walks "
                             "each object for nulls and sizes)")
    parser.add_argument("--watched-cache", action="store_true",
                        help="a cluster whose freshness costs what the API-backed cache's does")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    defaults = load_policies(ROOT / "policies")
    cluster = build_cluster(watched=args.watched_cache)
    requests = build_requests(args.reviews, admitted=not args.offline)
    services = [r for r in requests if r.kind == "Service"]
    ingresses = [r for r in requests if r.kind == "Ingress"]
    default_engine = Engine(defaults)
    results = {
        f"default set ({len(defaults)} policies)": measure(default_engine, cluster, requests),
        "  Services only": measure(default_engine, cluster, services),
        "  Ingresses only": measure(default_engine, cluster, ingresses),
        "100 policies": measure(Engine(hundred_policies(defaults)), cluster, requests),
    }
    print(f"{'policy set':<28} {'reviews':>8} {'median µs':>10} {'p99 µs':>8} {'mean µs':>8}")
    for name, figures in results.items():
        print(
            f"{name:<28} {figures['reviews']:>8} {figures['median_us']:>10.1f} "
            f"{figures['p99_us']:>8.1f} {figures['mean_us']:>8.1f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
