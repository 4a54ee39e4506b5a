"""What a kubectl user sees: the denial text, a Warn policy's warning, and a server-side
dry-run that shows the verdict (and the mutation) without taking a LoadBalancer place."""

from __future__ import annotations

import yaml

from .helpers import INTERNAL_LB, Cluster, NamespaceFactory
from .installation import Installation

DENIED = 'admission webhook "validate.edgewarden.dev" denied the request: '


def manifest(namespace: str, name: str, type_: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80}]},
    })


def test_kubectl_prints_why_a_nodeport_in_production_is_refused(
    installation: Installation, namespace: NamespaceFactory
) -> None:
    ns = namespace()  # environment=production
    result = installation.kubectl("apply", "-f", "-", input=manifest(ns, "shop", "NodePort"),
                                  check=False)
    assert result.returncode == 1
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(
        f'Error from server (Forbidden): error when creating "STDIN": {DENIED}'), result.stderr
    assert "deny-nodeport-in-production" in first_line
    assert "Service shop is type NodePort" in first_line
    assert "Ingress" in first_line, "the message says what to do instead"


def test_kubectl_shows_the_warning_of_a_warn_policy_and_creates_the_ingress(
    installation: Installation, namespace: NamespaceFactory, cluster: Cluster
) -> None:
    ns = namespace()
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "docs", "namespace": ns},
        "spec": {  # TLS for its host (so no denial), but no ingressClassName
            "tls": [{"hosts": ["docs.example.com"], "secretName": "docs-tls"}],
            "rules": [{"host": "docs.example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "docs", "port": {"number": 80}}}}]}}],
        },
    }
    result = installation.kubectl("apply", "-f", "-", input=yaml.safe_dump(ingress))
    assert "ingress.networking.k8s.io/docs created" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1, result.stderr
    assert "require-ingress-class" in warnings[0]
    assert "Ingress docs has no spec.ingressClassName" in warnings[0]
    assert cluster.networking.read_namespaced_ingress("docs", ns).metadata.name == "docs"


def test_kubectl_server_dry_run_shows_the_verdict_and_the_mutation_and_reserves_nothing(
    installation: Installation, namespace: NamespaceFactory, cluster: Cluster
) -> None:
    ns = namespace({"team": "payments"})
    cluster.core.create_namespaced_service(ns, _loadbalancer("lb-1"))
    # The mutation shows in what the dry-run returns...
    judged = installation.kubectl("apply", "--dry-run=server", "-o", "yaml", "-f", "-",
                                  input=manifest(ns, "lb-2", "LoadBalancer"))
    returned = yaml.safe_load(judged.stdout)
    assert returned["metadata"]["annotations"][INTERNAL_LB] == "true"
    # ...it took no place: with lb-1 and a place held for the dry-run, this would be refused...
    installation.kubectl("apply", "-f", "-", input=manifest(ns, "lb-2", "LoadBalancer"))
    # ...and a dry-run of one too many is refused like the real thing.
    over = installation.kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                                input=manifest(ns, "lb-3", "LoadBalancer"))
    assert over.returncode == 1
    assert DENIED in over.stderr and "limit-loadbalancers-per-namespace" in over.stderr
    assert "(namespace " + ns + " has 2 of 2)" in over.stderr
    assert cluster.services_in(ns) == {"lb-1", "lb-2"}


def _loadbalancer(name: str) -> dict[str, object]:
    return {"metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
