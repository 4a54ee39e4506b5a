"""Claims through the served /validate (the HTTP edge awaits the claim; two in-process
replicas on one API double): one host, two namespaces at once, one winner; the Claim
names it; a dry-run claims nothing; /readyz shows the counts."""

from __future__ import annotations

import copy
import threading
from typing import Any

from tests.admission.harness import make_review
from tests.kubeapi import KubeApi
from tests.kubeapi.resources import CLAIMS
from tests.support import eventually, namespace

from .conftest import ServeFactory


def ingress(name: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": "web", "port": {"number": 80}}}}]}}]}}


def test_two_replicas_answer_one_host_to_one_namespace_and_the_claim_names_it(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.add_resource(CLAIMS)
    crd_api.create(namespace(name="blog"))  # production would want TLS: two plain teams
    replicas = [serve(crd_api, leader_election_namespace="edgewarden") for _ in range(2)]
    reviews = [make_review("CREATE", ns, ingress("web", "pay.example.com"))
               for ns in ("blog", "dev")]
    answers: list[dict[str, Any]] = [{}, {}]
    start = threading.Barrier(2)

    def send(index: int) -> None:
        start.wait(timeout=30)
        answers[index] = replicas[index].server.review("/validate", reviews[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer for answer in answers), "both answered"
    allowed = [ns for ns, answer in zip(("blog", "dev"), answers, strict=True)
               if answer["allowed"]]
    assert len(allowed) == 1, answers
    refused = next(a for a in answers if not a["allowed"])
    assert "unique-ingress-hosts" in refused["status"]["message"]
    [claim] = crd_api.objects("claims", namespace="edgewarden")
    assert claim["spec"]["subject"] == "pay.example.com"
    assert claim["spec"]["holders"] == f"{allowed[0]}/web"

    # A dry-run is judged, and claims nothing.
    dry = make_review("CREATE", "dev", ingress("dry", "dry.example.com"), dry_run=True)
    assert replicas[0].server.review("/validate", dry)["allowed"]
    assert len(crd_api.objects("claims", namespace="edgewarden")) == 1

    counts = [r.server.get("/readyz").json()["claims"] for r in replicas]
    assert sum(c["taken"] for c in counts) == 1
    assert sum(c["refused"] for c in counts) == 1


def test_without_the_claim_crd_a_fail_policy_refuses_with_a_message_to_install_it(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    served = serve(crd_api, leader_election_namespace="edgewarden")
    answer = served.server.review("/validate", make_review(
        "CREATE", "dev", copy.deepcopy(ingress("web", "pay.example.com"))))
    assert not answer["allowed"]
    message = answer["status"]["message"]
    assert "could not take its claim at the API server" in message
    assert "Claim CRD is not installed" in message


def test_serve_dry_run_claims_nothing(crd_api: KubeApi, serve: ServeFactory) -> None:
    crd_api.add_resource(CLAIMS)
    served = serve(crd_api, leader_election_namespace="edgewarden", dry_run=True)
    for ns in ("dev", "production"):
        answer = served.server.review("/validate", make_review(
            "CREATE", ns, ingress("web", "pay.example.com")))
        assert answer["allowed"]
    assert crd_api.objects("claims", namespace="edgewarden") == []


def test_the_leader_confirms_a_claim_when_its_object_appears_and_releases_it_when_it_goes(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.add_resource(CLAIMS)
    served = serve(crd_api, leader_election_namespace="edgewarden")
    web = ingress("web", "pay.example.com")
    assert served.server.review("/validate", make_review("CREATE", "dev", web))["allowed"]

    def state() -> str | None:
        found = crd_api.objects("claims", namespace="edgewarden")
        return str(found[0]["spec"]["state"]) if found else None

    assert state() == "Pending"
    crd_api.create({**web, "metadata": {"name": "web", "namespace": "dev"}})
    eventually(lambda: state() == "Held", timeout=30, what="the leader's confirmation")
    crd_api.delete("ingresses", "web", namespace="dev")
    eventually(lambda: state() is None, timeout=30, what="the claim released")
    assert "claims" in served.server.get("/readyz").json()["background"]  # supervised
