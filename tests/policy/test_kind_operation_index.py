"""A request no policy matches by kind and operation costs nothing per policy.

The engine indexes its policies by (kind, operation) when it is built; a Pod admitted past
100 Service policies, or a Service DELETE past 100 policies that judge CREATE and UPDATE,
finds an empty entry and returns. Counted two ways, through the real code: every compiled
CEL program of the set is wrapped in a counter of its executions, and tracemalloc counts
what the engine's own modules allocate for one request.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cel
import pytest

from tests.support import service
from webhook.policy.cel.expression import CelExpression
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.ports import EmptyCluster
from webhook.policy.model.request import AdmissionRequest, make_request

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: service-rule-{index}
spec:
  match:
    kinds: [Service]
    operations: [CREATE, UPDATE]
  matchConditions:
    - name: not-external
      expression: "object.spec.type != 'ExternalName'"
  validations:
    - expression: "object.spec.type != 'NodePort{index}'"
"""

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}


class CountingProgram:
    """A compiled CEL program that counts its executions and then runs."""

    def __init__(self, program: cel.Program, counter: list[int]) -> None:
        self.program = program
        self.counter = counter

    def execute(self, context: cel.Context | Mapping[str, Any]) -> Any:
        self.counter[0] += 1
        return self.program.execute(context)

    def closure(self, context: Mapping[str, Any]) -> Any:
        """What the engine's shared activation runs (CelExpression.evaluate_bool)."""
        self.counter[0] += 1
        return self.program.closure(context)


def policy_set(folder: Path, count: int) -> PolicySet:
    folder.mkdir()
    for index in range(count):
        (folder / f"rule-{index}.yaml").write_text(POLICY.format(index=index))
    return load_policies(folder)


def count_executions(engine: Engine) -> list[int]:
    """Wrap every compiled program of ``engine`` the requests can reach; the counter."""
    counter = [0]
    wrapped = 0
    for policies in engine.compiled.by_kind.values():
        for policy in policies:
            for condition in policy.match_conditions:
                expression: CelExpression = condition.expression
                # The compiled set is immutable by design; the test swaps the program of
                # each expression in place so the engine runs exactly what it would.
                object.__setattr__(expression, "program",
                                   CountingProgram(expression.program, counter))
                wrapped += 1
    assert wrapped == len(engine.policies)
    return counter


@pytest.fixture(scope="module")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    return policy_set(tmp_path_factory.mktemp("hundred") / "policies", 100)


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    return policy_set(tmp_path_factory.mktemp("one") / "policies", 1)


def test_a_pod_past_100_service_policies_runs_no_expression(hundred: PolicySet) -> None:
    engine = Engine(hundred)
    executions = count_executions(engine)
    decision = engine.evaluate(make_request("CREATE", POD), EmptyCluster())
    assert decision.allowed and decision.matched_policies == []
    assert executions[0] == 0

    # The counter counts: a Service CREATE runs every policy's matchCondition once.
    web = service(name="web", namespace="shop")
    decision = engine.evaluate(make_request("CREATE", web), EmptyCluster())
    assert len(decision.matched_policies) == 100
    assert executions[0] == 100


def test_a_service_delete_past_policies_for_create_and_update_runs_none(
    hundred: PolicySet,
) -> None:
    engine = Engine(hundred)
    executions = count_executions(engine)
    web = service(name="web", namespace="shop")
    decision = engine.evaluate(make_request("DELETE", None, web), EmptyCluster())
    assert decision.allowed and decision.matched_policies == []
    assert executions[0] == 0


def _engine_allocations(engine: Engine, request: AdmissionRequest) -> dict[str, int]:
    """How many allocations each of the engine's modules makes judging ``request`` (after
    a warm-up run, so caches filled on first use do not count)."""
    engine.evaluate(request, EmptyCluster())
    tracemalloc.start()
    try:
        engine.evaluate(request, EmptyCluster())
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ours = snapshot.filter_traces([tracemalloc.Filter(True, "*/webhook/policy/*")])
    counts: dict[str, int] = {}
    for stat in ours.statistics("filename"):
        name = Path(stat.traceback[0].filename).name
        counts[name] = counts.get(name, 0) + stat.count
    return counts


@pytest.mark.parametrize("request_of", [
    lambda: make_request("CREATE", POD),
    lambda: make_request("DELETE", None, service(name="web", namespace="shop")),
], ids=["pod-create", "service-delete"])
def test_an_unmatched_request_allocates_the_same_for_1_or_100_policies(
    request_of: Any, one: PolicySet, hundred: PolicySet,
) -> None:
    request = request_of()
    small = _engine_allocations(Engine(one), request)
    large = _engine_allocations(Engine(hundred), request)
    assert large == small
    # No request context is built (so no CEL context, no namespace look-up, no bindings).
    assert "context.py" not in large
