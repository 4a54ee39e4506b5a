"""The optional syntax (``a.?b``, ``a[?k]``) and ``cidr.ip()`` through the whole engine: the
rewrite the Rust evaluator needs must survive the engine's own rewrites (policy variables,
field bindings), and the export must carry the expression as it was written."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support import policies_from_yaml
from webhook.cluster.memory import MemoryCluster
from webhook.native.export import export
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.request import make_request

POLICY = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: team-and-ranges}
spec:
  match: {kinds: [Service]}
  variables:
    - name: team
      expression: "object.metadata.?labels[?'team'].orValue('')"
  validations:
    - expression: "variables.team != ''"
      messageExpression: >-
        'no team among ' + string(object.metadata.?labels.orValue({}).size()) + ' labels'
    - expression: >-
        object.spec.?loadBalancerSourceRanges.orValue([]).all(r,
        isCIDR(r) && cidr(r).ip() == cidr(r).masked().ip())
      message: "a source range has host bits set"
"""


def service(labels: dict[str, str] | None, ranges: list[str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "s", "namespace": "default"}
    if labels is not None:
        metadata["labels"] = labels
    spec: dict[str, Any] = {"type": "LoadBalancer", "ports": [{"port": 80}]}
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def judge(obj: dict[str, Any]) -> list[str]:
    engine = Engine(policies_from_yaml(POLICY))
    decision = engine.evaluate(make_request("CREATE", obj), MemoryCluster())
    return [v.message for v in decision.violations]


def test_a_present_label_reads_through_the_optional_chain() -> None:
    assert judge(service({"team": "payments"}, ["10.0.0.0/8"])) == []


def test_absent_labels_are_none_not_an_error() -> None:
    assert judge(service(None)) == ["no team among 0 labels"]
    assert judge(service({"app": "web"})) == ["no team among 1 labels"]


def test_cidr_ip_is_the_method_not_the_global_ip() -> None:
    assert judge(service({"team": "a"}, ["10.0.0.1/8"])) == ["a source range has host bits set"]


def test_the_export_carries_the_expression_as_written() -> None:
    result = export(policies_from_yaml(POLICY))
    assert result.exported == ["team-and-ranges"]
    policy = next(o for o in result.objects if o["kind"] == "ValidatingAdmissionPolicy")
    text = yaml.safe_dump(policy)
    assert ".?labels[?'team']" in text and "_optional" not in text and "_cidr_ip" not in text
