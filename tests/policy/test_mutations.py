"""Mutations: absent-only annotations, escaping, composition order, raw patch failures."""

from __future__ import annotations

import jsonpatch

from tests.support import service
from webhook.cluster.memory import MemoryCluster
from webhook.policy.blocks.patches import escape_pointer_token
from webhook.policy.model.decision import ViolationSource

from .conftest import engine_for, make_request

INTERNAL = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: internal-lb}
spec:
  match: {kinds: [Service]}
  matchConditions: [{name: lb, expression: "object.spec.type == 'LoadBalancer'"}]
  mutations: [{internalLoadBalancer: {flavour: FLAVOUR}}]
"""


def mutate(policy_yaml: str, obj: dict) -> tuple[dict, list[dict]]:
    decision = engine_for(policy_yaml).evaluate(make_request("CREATE", obj), MemoryCluster())
    patched = jsonpatch.apply_patch(obj, decision.patch)
    if decision.mutated_object is not None:
        assert patched == decision.mutated_object  # the patch reproduces what the engine saw
    return patched, decision.patch


def test_patch_creates_the_annotations_map_when_the_object_has_none() -> None:
    obj = service(name="lb", namespace="team", type="LoadBalancer")
    _, patch = mutate(INTERNAL.replace("FLAVOUR", "aws"), obj)
    assert patch == [
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        }
    ]
    assert "annotations" not in obj["metadata"]  # the request's object is never modified


def test_patch_escapes_slash_in_annotation_keys_when_the_map_exists() -> None:
    obj = service(name="lb", namespace="team", type="LoadBalancer", annotations={"team": "a"})
    patched, patch = mutate(INTERNAL.replace("FLAVOUR", "gcp"), obj)
    assert patch == [
        {
            "op": "add",
            "path": "/metadata/annotations/networking.gke.io~1load-balancer-type",
            "value": "Internal",
        }
    ]
    assert patched["metadata"]["annotations"] == {
        "team": "a",
        "networking.gke.io/load-balancer-type": "Internal",
    }


def test_existing_annotation_is_never_overwritten() -> None:
    obj = service(
        name="lb",
        namespace="team",
        type="LoadBalancer",
        annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "false"},
    )
    _, patch = mutate(INTERNAL.replace("FLAVOUR", "aws"), obj)
    assert patch == []


def test_each_flavour_sets_its_annotation() -> None:
    expected = {
        "aws": ("service.beta.kubernetes.io/aws-load-balancer-internal", "true"),
        "aws-lbc": ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
        "gcp": ("networking.gke.io/load-balancer-type", "Internal"),
        "azure": ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
        "oci": ("service.beta.kubernetes.io/oci-load-balancer-internal", "true"),
        "oci-nlb": ("oci-network-load-balancer.oraclecloud.com/internal", "true"),
        "digitalocean": ("service.beta.kubernetes.io/do-loadbalancer-network", "INTERNAL"),
        "ibm": ("service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type", "private"),
        "alibaba": (
            "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type", "intranet"
        ),
        "openstack": ("service.beta.kubernetes.io/openstack-internal-load-balancer", "true"),
        "hetzner": ("load-balancer.hetzner.cloud/disable-public-network", "true"),
    }
    for flavour, (key, value) in expected.items():
        patched, _ = mutate(
            INTERNAL.replace("FLAVOUR", flavour),
            service(name="lb", namespace="t", type="LoadBalancer"),
        )
        assert patched["metadata"]["annotations"] == {key: value}, flavour


def test_tilde_is_escaped_before_slash() -> None:
    assert escape_pointer_token("a~b/c") == "a~0b~1c"


def test_mutations_compose_in_policy_order_and_later_ones_see_earlier_results() -> None:
    policies = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: first}
spec:
  match: {kinds: [Service]}
  mutations: [{setAnnotations: {example.com/owner: platform, example.com/tier: web}}]
---
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: second}
spec:
  match: {kinds: [Service]}
  matchConditions:
    - {name: owned, expression: "object.metadata.annotations['example.com/owner'] == 'platform'"}
  mutations:
    - setAnnotations: {example.com/owner: someone-else, example.com/checked: "yes"}
    - patch: [{op: add, path: /metadata/labels, value: {team: platform}}]
"""
    obj = service(name="svc", namespace="team")
    decision = engine_for(policies).evaluate(make_request("CREATE", obj), MemoryCluster())
    assert [m.policy for m in decision.mutations] == ["first", "second"]
    patched = jsonpatch.apply_patch(obj, decision.patch)
    assert patched["metadata"]["annotations"] == {
        "example.com/owner": "platform",
        "example.com/tier": "web",
        "example.com/checked": "yes",
    }
    assert patched["metadata"]["labels"] == {"team": "platform"}


def test_validations_judge_the_mutated_object() -> None:
    policies = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: annotate}
spec:
  match: {kinds: [Service]}
  mutations: [{setAnnotations: {example.com/owner: platform}}]
---
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: require-owner}
spec:
  match: {kinds: [Service]}
  validations: [{expression: "'example.com/owner' in object.metadata.annotations"}]
"""
    decision = engine_for(policies).evaluate(
        make_request("CREATE", service(name="s", namespace="t")), MemoryCluster()
    )
    assert decision.allowed


def test_a_raw_patch_that_does_not_apply_is_an_evaluation_error_not_a_crash() -> None:
    policy = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: bad-patch}
spec:
  match: {kinds: [Service]}
  mutations: [{patch: [{op: add, path: /metadata/labels/team, value: platform}]}]
"""
    obj = service(name="s", namespace="t")  # no labels map: the add has no parent
    decision = engine_for(policy).evaluate(make_request("CREATE", obj), MemoryCluster())
    assert decision.patch == []
    assert not decision.allowed
    assert decision.violations[0].source is ViolationSource.ERROR
    assert decision.errors[0].policy == "bad-patch"
    assert (
        "/metadata/labels/team" in decision.violations[0].message
        or "labels" in decision.violations[0].message
    )
