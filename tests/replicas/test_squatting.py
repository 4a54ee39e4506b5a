"""Squatting, without authentication: a client that is not the API server sends fabricated
AdmissionReviews straight at the webhook's URL for 60 s, while a legitimate namespace
creates its LoadBalancer and its host through the API server. Both are admitted.

The set is the default install's shape: ``--manage-quotas``, the default
``--webhook-timeout`` (5 s) and no ``--client-ca`` (the chart and the kustomize base cannot
configure the API server's admission plugins, docs/replicas.md). The squatter asks for
exactly what the legitimate namespace wants:

* a LoadBalancer CREATE in the legitimate namespace, whose cap is 1 and which has none
  yet: an allowed review of it used to hold the one place;
* an Ingress CREATE for the legitimate namespace's (ungranted) host, from a namespace of
  the squatter's own: an allowed review of it used to take the host for the squatter.

Its rate: one pair of reviews every ``SQUAT_INTERVAL`` seconds, each on a new connection,
which the proxy hands to the next replica: sixteen times the rate that, in the issue, kept
a namespace from its LoadBalancer (0 of 13 admitted) and its host (0 of 20) on a default
install, where one review every 8 s renewed what the last one reserved (the webhook
timeout plus a 5 s margin). Against that code (main before the API server arbitrated
claims), this test fails: the host stayed the squatter's for the whole minute (0 of 20
tries; every fabricated Ingress added a reservation of its own). What an unauthenticated
review holds must now outlive neither a few seconds without its object nor a repeat of it.

The legitimate namespace retries every ``RETRY_INTERVAL`` seconds, as a GitOps controller
or a CI job would; the test asserts that both creates got through while the squatter was
still sending, not how soon.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.kube.controlplane import ControlPlane

from .fixtures import (
    LB_CAP_ANNOTATION,
    ReplicaSet,
    WebhookCertificates,
    admin_ssl_context,
    load_balancer,
)

SQUAT_SECONDS = 60.0
SQUAT_INTERVAL = 0.5
RETRY_INTERVAL = 3.0
DEFAULT_WEBHOOK_TIMEOUT = 5  # serve --webhook-timeout and the configurations' default


def ingress(name: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "web", "port": {"number": 80}}}}]}}]}}


def fabricated(namespace: str, obj: dict[str, Any], resource: str, group: str = "",
               ) -> dict[str, Any]:
    """An AdmissionReview for a CREATE the API server never asked about."""
    name = obj["metadata"]["name"]
    version = "v1"
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": "CREATE", "namespace": namespace, "name": name,
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": obj["kind"]},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "userInfo": {"username": "system:serviceaccount:squatter:default"},
        "object": {**obj, "metadata": {**obj["metadata"], "namespace": namespace}},
        "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }}


@dataclass
class Squatter:
    """Sends fabricated reviews through the proxy until stopped; counts the answers."""

    port: int
    context: ssl.SSLContext
    victim: str  # the legitimate namespace
    own: str  # the squatter's namespace
    host: str
    sent: int = 0
    allowed: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def review(self, body: dict[str, Any]) -> None:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                 timeout=30)
        try:
            connection.request("POST", "/validate", json.dumps(body),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
        except (OSError, ValueError) as error:
            self.failures.append(f"{type(error).__name__}: {error}")
            return
        finally:
            connection.close()
        self.sent += 1
        if response.status != 200:
            self.failures.append(f"HTTP {response.status}")
        elif answer["response"]["allowed"]:
            self.allowed += 1

    def run(self) -> None:
        while not self.stop.is_set():
            tag = uuid.uuid4().hex[:6]
            self.review(fabricated(self.victim, load_balancer(f"squat-{tag}"), "services"))
            self.review(fabricated(self.own, ingress(f"squat-{tag}", self.host), "ingresses",
                                   "networking.k8s.io"))
            self.stop.wait(SQUAT_INTERVAL)


@dataclass
class Attempts:
    """The legitimate namespace's tries at one create."""

    what: str
    tries: int = 0
    admitted_at: float | None = None
    last_refusal: str = ""


def create(plane: ControlPlane, namespace: str, path: str, body: dict[str, Any],
           attempts: Attempts) -> None:
    connection = http.client.HTTPSConnection("127.0.0.1", plane.port,
                                             context=admin_ssl_context(plane), timeout=60)
    try:
        connection.request("POST", f"{path.format(namespace=namespace)}?fieldManager=team",
                           json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read() or b"{}")
    finally:
        connection.close()
    attempts.tries += 1
    if response.status == 201:
        attempts.admitted_at = time.monotonic()
    else:
        attempts.last_refusal = f"HTTP {response.status}: {answer.get('message', answer)}"


# Until the API server arbitrates claims (webhook/cluster/claims.py, issue 19) the squatter
# wins: the test runs all the same and must fail (strict), so it says so either way.
CLAIMS = importlib.util.find_spec("webhook.cluster.claims") is not None


@pytest.mark.xfail(not CLAIMS, strict=True, reason="without claims in the API server, "
                   "fabricated reviews hold a host for as long as they keep coming")
def test_fabricated_reviews_for_60s_keep_no_namespace_from_its_loadbalancer_or_its_host(
    replica_set: Callable[..., ReplicaSet], plane: ControlPlane,
    webhook_certificates: WebhookCertificates,
) -> None:
    replicas = replica_set(serve_args=("--manage-quotas",),
                           webhook_timeout=DEFAULT_WEBHOOK_TIMEOUT)
    victim = replicas.namespace(annotations={LB_CAP_ANNOTATION: "1"})
    own = replicas.namespace()
    host = f"pay-{replicas.id}.example.com"
    replicas.wait_for_quotas({victim: 1})

    context = ssl.create_default_context(cafile=str(webhook_certificates.ca_file))
    squatter = Squatter(replicas.proxy.port, context, victim, own, host)
    thread = threading.Thread(target=squatter.run, name="squatter", daemon=True)
    started = time.monotonic()
    thread.start()
    deadline = started + SQUAT_SECONDS
    lb, route = Attempts("its LoadBalancer"), Attempts("its host")
    try:
        # The squatter goes first: its reviews are in place before the team's first try.
        while squatter.sent < 2 * len(replicas.replicas) and time.monotonic() < deadline:
            time.sleep(0.1)
        while time.monotonic() < deadline and (lb.admitted_at is None
                                               or route.admitted_at is None):
            if lb.admitted_at is None:
                create(plane, victim, "/api/v1/namespaces/{namespace}/services",
                       load_balancer(f"web-{lb.tries}"), lb)
            if route.admitted_at is None:
                create(plane, victim,
                       "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
                       ingress(f"web-{route.tries}", host), route)
            time.sleep(RETRY_INTERVAL)
        # The squatter keeps sending for the whole minute, whatever the team got.
        squatter.stop.wait(max(0.0, deadline - time.monotonic()))
    finally:
        squatter.stop.set()
        thread.join(timeout=60)

    assert not thread.is_alive()
    assert not squatter.failures, squatter.failures[:3]
    assert squatter.sent >= 2 * len(replicas.replicas), "the squatter was answered"
    for attempts in (lb, route):
        assert attempts.admitted_at is not None, (
            f"the legitimate namespace never got {attempts.what} in {attempts.tries} tries "
            f"while fabricated reviews came in (last refusal: {attempts.last_refusal})")
        assert attempts.admitted_at < deadline, "admitted while the squatter was sending"
    print(f"\nsquatter: {squatter.sent} fabricated reviews in {SQUAT_SECONDS:.0f}s "
          f"({squatter.allowed} answered allowed); the team got its LoadBalancer at try "
          f"{lb.tries} ({lb.admitted_at - started:.1f}s) and its host at try {route.tries} "
          f"({route.admitted_at - started:.1f}s)")
