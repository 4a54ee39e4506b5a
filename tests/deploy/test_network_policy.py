"""The NetworkPolicy of the production, audit-only and cert-manager overlays: only the
control-plane ranges reach the webhook port, and it selects the webhook's pods."""

from __future__ import annotations

import ipaddress

import pytest

from .conftest import find, one, rendered

WITH_POLICY = ["production", "audit-only", "cert-manager"]


@pytest.mark.parametrize("overlay", WITH_POLICY)
def test_only_the_control_plane_ranges_reach_the_webhook_port(overlay: str) -> None:
    objects = rendered(overlay)
    policy = one(objects, "NetworkPolicy", "edgewarden")
    deployment = one(objects, "Deployment", "edgewarden")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    # The Service sends the API server's calls to this port: it must be the one let in.
    service = one(objects, "Service", "edgewarden")
    [webhook_port] = [p["targetPort"] for p in service["spec"]["ports"] if p["name"] == "https"]
    assert [p["port"] for p in rule["ports"]] == [webhook_port]
    assert webhook_port in named
    # No rule for the probe port: the kubelet calls it from the pod's own node, which a
    # NetworkPolicy does not block; nobody else needs it.
    assert "probes" in named and "probes" not in [p["port"] for p in rule["ports"]]
    assert rule["from"], "an empty from would let everyone in"
    for peer in rule["from"]:
        assert set(peer) == {"ipBlock"}, "only address ranges, no pod or namespace selectors"
        ipaddress.ip_network(peer["ipBlock"]["cidr"])  # strict: no host bits set


def test_the_kind_overlay_has_no_network_policy() -> None:
    """kind is for development and the e2e tests; the policy would only get in the way."""
    assert not find(rendered("kind"), "NetworkPolicy")
