"""Issue 19, done when: claims make a ``limit`` with a ``where`` and host ownership exact
with 3 replicas behind one URL, against the real API server (tests/replicas/fixtures.py).

* 200 concurrent CREATEs of counted Services over 5 namespaces, spread over the replicas,
  leave exactly each namespace's cap; no ResourceQuota can express that ``where``.
* 8 namespaces racing for one host through the replicas leave exactly one winner, and
  ``kubectl get claims`` names it; its claim is released when its Ingress goes; a pending
  claim whose object never appears (a review sent straight to the webhook) expires and
  holds the host no longer; the leader collects a Claim no policy owns.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kube.controlplane import ControlPlane
from tests.kube.wait import until

from .fixtures import (
    REPO,
    WEBHOOK_NAMESPACE,
    ReplicaSet,
    WebhookCertificates,
    post_concurrently,
)
from .test_squatting import fabricated

PUBLIC_LIMIT = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: limit-public-services
  annotations:
    edgewarden.dev/description: At most 3 Services labelled exposure=public per namespace.
spec:
  mode: Enforce
  failurePolicy: Fail
  match: {kinds: [Service], operations: [CREATE, UPDATE]}
  limit:
    where: >-
      has(object.metadata.labels) && 'exposure' in object.metadata.labels
      && object.metadata.labels['exposure'] == 'public'
    max: 3
    message: at most 3 public Services per namespace
"""
CAP = 3
NAMESPACES = 5
CREATES = 200
HOST_RACERS = 8
PENDING_SECONDS = 10  # serve's --webhook-timeout 5 plus its 5 s margin


def policies(folder: Path) -> list[Path]:
    """The where-limit, the shipped host ownership policy, and the policy the harness
    probes the set with (deny-nodeport-in-production)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "limit-public-services.yaml").write_text(PUBLIC_LIMIT)
    for name in ("unique-ingress-hosts.yaml", "deny-nodeport-in-production.yaml"):
        shutil.copy(REPO / "policies" / name, folder / name)
    return [folder]


def public_service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"exposure": "public"}},
            "spec": {"type": "ClusterIP", "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080}]}}


def ingress(name: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "web", "port": {"number": 80}}}}]}}]}}


def claims(plane: ControlPlane) -> list[dict[str, Any]]:
    listed = plane.kubectl("-n", WEBHOOK_NAMESPACE, "get", "claims", "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def claim_on(plane: ControlPlane, subject: str) -> dict[str, Any] | None:
    return next((c for c in claims(plane) if c["spec"]["subject"] == subject), None)


SERVICES = "/api/v1/namespaces/{namespace}/services"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses"


def test_a_where_limit_is_exact_under_200_concurrent_creates_through_3_replicas(
    replica_set: Callable[..., ReplicaSet], plane: ControlPlane, tmp_path: Path
) -> None:
    replicas = replica_set(count=3, policies=policies(tmp_path / "policies"))
    namespaces = [replicas.namespace() for _ in range(NAMESPACES)]
    creates = [(namespaces[i % NAMESPACES], SERVICES, public_service(f"s-{uuid.uuid4().hex[:8]}"))
               for i in range(CREATES)]
    before = replicas.admissions()
    outcomes = post_concurrently(plane, creates)
    answered = [after - earlier for after, earlier in zip(replicas.admissions(), before,
                                                          strict=True)]

    created = Counter(o.namespace for o in outcomes if o.created)
    assert dict(created) == dict.fromkeys(namespaces, CAP)
    refusals = [o for o in outcomes if not o.created]
    assert len(refusals) == CREATES - CAP * NAMESPACES
    assert all(o.status == 403 and "at most 3 public Services per namespace" in o.message
               for o in refusals), refusals[:3]
    for namespace in namespaces:
        listed = json.loads(plane.kubectl("-n", namespace, "get", "services", "-l",
                                          "exposure=public", "-o", "json").stdout)["items"]
        assert len(listed) == CAP
    assert all(count > 0 for count in answered), answered
    # One Count claim per namespace, its entries naming created Services (held entries
    # retire a minute after their claim, so a slow run may find fewer than the cap).
    counts = [c for c in claims(plane) if c["spec"]["type"] == "Count"
              and c["spec"]["subject"] in namespaces]
    assert counts, "the claims are there"
    assert all(1 <= len(c["spec"]["entries"]) <= CAP for c in counts)
    names = {body["metadata"]["name"] for _, _, body in creates}
    assert all(e["object"] in names for c in counts for e in c["spec"]["entries"])
    print(f"\n{CREATES} concurrent creates of counted Services over {len(replicas.replicas)} "
          f"replicas (reviews answered per replica: {answered}): {CAP * NAMESPACES} created, "
          f"{len(refusals)} refused by the claims")


def test_eight_namespaces_racing_for_one_host_leave_one_winner_named_by_its_claim(
    replica_set: Callable[..., ReplicaSet], plane: ControlPlane, tmp_path: Path,
    webhook_certificates: WebhookCertificates,
) -> None:
    replicas = replica_set(count=3, policies=policies(tmp_path / "policies"),
                           webhook_timeout=5)
    racers = [replicas.namespace() for _ in range(HOST_RACERS)]
    host = f"pay-{replicas.id}.example.com"
    outcomes = post_concurrently(plane, [(ns, INGRESSES, ingress("web", host)) for ns in racers])

    winners = [o.namespace for o in outcomes if o.created]
    assert len(winners) == 1, outcomes
    refused = [o for o in outcomes if not o.created]
    assert all(o.status == 403 and "unique-ingress-hosts" in o.message for o in refused)
    [winner] = winners

    # The claim names the winner; the leader confirms it once the Ingress is there.
    def held() -> bool:
        claim = claim_on(plane, host)
        return claim is not None and claim["spec"]["state"] == "Held"

    until(held, "the host's claim to be confirmed", 60.0, interval=0.3)
    claim = claim_on(plane, host)
    assert claim is not None
    assert claim["spec"]["holders"] == f"{winner}/web"
    printed = plane.kubectl("-n", WEBHOOK_NAMESPACE, "get", "claims").stdout
    line = next(row for row in printed.splitlines() if host in row)
    assert f"{winner}/web" in line and "Held" in line

    # Released when the Ingress goes: another namespace may then take the host.
    plane.kubectl("-n", winner, "delete", "ingress", "web", "--wait=true")
    until(lambda: claim_on(plane, host) is None, "the claim to be released", 60.0,
          interval=0.3)
    second = next(ns for ns in racers if ns != winner)
    plane.kubectl("-n", second, "create", "-f", "-", input=json.dumps(ingress("web", host)))

    # A review sent straight to the webhook (no object follows) holds a host for seconds.
    squatted = f"squat-{replicas.id}.example.com"
    context = ssl.create_default_context(cafile=str(webhook_certificates.ca_file))
    connection = http.client.HTTPSConnection("127.0.0.1", replicas.proxy.port, context=context,
                                             timeout=30)
    connection.request("POST", "/validate", json.dumps(fabricated(
        racers[0], {**ingress("ghost", squatted), "metadata": {"name": "ghost"}}, "ingresses",
        "networking.k8s.io")), {"Content-Type": "application/json"})
    assert json.loads(connection.getresponse().read())["response"]["allowed"]
    connection.close()
    pending = claim_on(plane, squatted)
    assert pending is not None and pending["spec"]["state"] == "Pending"
    # Named apart from "web": racers[1] may be the namespace that took the first host.
    refused_now = plane.kubectl("-n", racers[1], "create", "-f", "-", check=False,
                                input=json.dumps(ingress("late", squatted)))
    assert refused_now.returncode != 0 and "unique-ingress-hosts" in refused_now.stderr

    def expired() -> bool:
        claim = claim_on(plane, squatted)
        return claim is not None and claim["spec"]["state"] == "Expired"

    until(expired, "the unfulfilled claim to expire", PENDING_SECONDS + 30.0, interval=0.5)
    plane.kubectl("-n", racers[1], "create", "-f", "-", input=json.dumps(ingress("late", squatted)))

    # The leader collects a Claim that no loaded policy owns.
    orphan = {"apiVersion": "edgewarden.dev/v1alpha1", "kind": "Claim",
              "metadata": {"name": f"key-orphan-{replicas.id}", "namespace": WEBHOOK_NAMESPACE,
                           "labels": {"app.kubernetes.io/managed-by": "edgewarden",
                                      "edgewarden.dev/claim-space": "no-such-policy"}},
              "spec": {"type": "Key", "policy": "gone", "subject": "old.example.com",
                       "entries": [{"namespace": racers[2], "state": "Held",
                                    "since": "2026-01-01T00:00:00Z", "key": "old.example.com"}]}}
    plane.kubectl("create", "-f", "-", input=json.dumps(orphan))
    until(lambda: plane.kubectl("-n", WEBHOOK_NAMESPACE, "get", "claim",
                                orphan["metadata"]["name"], check=False).returncode != 0,
          "the orphan claim to be collected", 60.0, interval=0.3)
