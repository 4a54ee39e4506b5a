"""Flattened, projected bindings decide exactly as CEL does on the whole object."""

from __future__ import annotations

import cel
import pytest
import yaml

from tests.support import policies_from_yaml
from webhook.cluster.memory import MemoryCluster
from webhook.policy.cel.expression import compile_expression
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import ViolationSource
from webhook.policy.model.nulls import without_nulls

from .conftest import make_request

OBJECTS = [
    {"metadata": {"name": "a", "annotations": {"team": "x"}}, "spec": {"type": "LoadBalancer"}},
    {"metadata": {"name": "b"}, "spec": {"type": None, "externalIPs": ["1.2.3.4"]}},
    {"metadata": {"name": "c"}, "spec": {}},
    {"metadata": {"name": "d"}},
]
EXPRESSIONS = [
    "has(object.spec.type) && object.spec.type == 'LoadBalancer'",
    "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
    "has(object.metadata.annotations) && 'team' in object.metadata.annotations",
    "object.spec.type == 'LoadBalancer'",
    "has(object.spec.selector.app)",
    "object.metadata.name == 'a' || has(object.spec)",
    "object.spec == {} || has(object.spec.type)",
]


def outcome(program: cel.Program, context: dict) -> object:
    try:
        return program.execute(context)
    except Exception:
        return "error"


@pytest.mark.parametrize("expression", EXPRESSIONS)
@pytest.mark.parametrize("index", range(len(OBJECTS)))
def test_engine_agrees_with_cel_on_the_whole_object(expression: str, index: int) -> None:
    obj = {"apiVersion": "v1", "kind": "Service", **OBJECTS[index]}
    obj["metadata"] = {**obj["metadata"], "namespace": "team"}
    # The reference: CEL on the whole object, where a null field is absent (SPEC).
    expected = outcome(cel.compile(expression), {"object": without_nulls(obj)})
    compile_expression(expression)  # valid for a policy
    policy = {
        "apiVersion": "edgewarden.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": "probe"},
        "spec": {
            "match": {"kinds": ["Service"]},
            "validations": [{"expression": expression}],
        },
    }
    engine = Engine(policies_from_yaml(yaml.safe_dump(policy)))
    decision = engine.evaluate(make_request("CREATE", obj), MemoryCluster())
    if expected == "error":
        assert decision.violations and decision.violations[0].source is ViolationSource.ERROR
    else:
        assert decision.allowed is expected, decision.violations
