"""Values that depend on the Namespace alone are computed once per Namespace object
(compiled.NamespaceMemo): a variable that reads the Namespace, and one that reads only
such variables. One that also reads the object is computed for every request."""

from __future__ import annotations

from typing import Any

from tests.support import namespace, service
from webhook.cluster.memory import MemoryCluster
from webhook.policy.cel.runtime import compiler
from webhook.policy.engine.evaluation import Engine

from .conftest import engine_for, make_request

POLICY = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: granted-types}
spec:
  mode: Enforce
  match: {kinds: [Service]}
  variables:
    - name: grant
      expression: >-
        has(namespaceObject.metadata.annotations)
        && 'example.com/types' in namespaceObject.metadata.annotations
        ? namespaceObject.metadata.annotations['example.com/types'] : ''
    - name: granted
      expression: "variables.grant.split(',').map(t, t.trim())"
    - name: asked
      expression: "variables.granted.exists(t, t == object.spec.type)"
  validations:
    - expression: "variables.asked"
      message: this Service type is not granted here
"""


def _count_runs(monkeypatch: Any, programs: dict[str, compiler.Program]) -> dict[str, int]:
    """How often each program ran (through its closure, as the engine runs it), by name."""
    runs: dict[str, int] = {}
    for key, program in programs.items():

        def counting(activation: Any, key: str = key,
                     closure: compiler.Closure = program.closure) -> Any:
            runs[key] = runs.get(key, 0) + 1
            return closure(activation)

        monkeypatch.setattr(program, "closure", counting)
    return runs


def _runs(monkeypatch: Any, engine: Engine) -> dict[str, int]:
    """How often each variable's program ran, by the start of its source."""
    programs = {expression.program.source.split("(")[0].split(".")[-1][:20]: expression.program
                for variables in engine.compiled.variables.values()
                for expression in variables.values()}
    return _count_runs(monkeypatch, programs)


def test_a_variable_of_namespace_only_variables_is_computed_once_per_namespace(
    monkeypatch: Any,
) -> None:
    engine = engine_for(POLICY)
    cluster = MemoryCluster([namespace(name="team",
                                       annotations={"example.com/types": "ClusterIP, NodePort"})])
    runs = _runs(monkeypatch, engine)
    decisions = [engine.evaluate(make_request("CREATE", service(
        name=f"s{i}", namespace="team", type=kind)), cluster)
        for i, kind in enumerate(["ClusterIP", "NodePort", "LoadBalancer"] * 3)]

    assert [d.allowed for d in decisions] == [True, True, False] * 3
    assert runs.get("split") == 1  # `granted`: once for the Namespace object
    assert runs.get("exists") == 9  # `asked` reads the object too: every request
    # A changed Namespace is a new object: computed again, and judged by its new value.
    cluster.add(namespace(name="team", annotations={"example.com/types": "LoadBalancer"}))
    assert engine.evaluate(make_request("CREATE", service(
        name="lb", namespace="team", type="LoadBalancer")), cluster).allowed
    assert runs.get("split") == 2


def test_the_memo_holds_exactly_the_namespace_only_values() -> None:
    engine = engine_for(POLICY)
    compiled = engine.compiled
    variables = compiled.variables["granted-types"]
    memoized = {name for name, expression in variables.items()
                if id(expression) in compiled.memo.expressions}
    assert memoized == {"grant", "granted"}


CONDITIONED = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: restricted-types}
spec:
  mode: Enforce
  match: {kinds: [Service]}
  matchConditions:
    - name: namespace-is-restricted
      expression: >-
        has(namespaceObject.metadata.annotations)
        && 'example.com/types' in namespaceObject.metadata.annotations
    - name: typed
      expression: "has(object.spec.type)"
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: no NodePort in a restricted namespace
"""


def test_a_match_condition_on_the_namespace_alone_is_judged_once_per_namespace(
    monkeypatch: Any,
) -> None:
    engine = engine_for(CONDITIONED)
    conditions = engine.compiled.by_kind["Service"][0].match_conditions
    runs = _count_runs(monkeypatch, {c.name: c.expression.program for c in conditions})
    cluster = MemoryCluster([namespace(name="team", annotations={"example.com/types": "x"}),
                             namespace(name="open")])
    verdicts = [engine.evaluate(make_request("CREATE", service(
        name=f"s{i}", namespace=where, type="NodePort")), cluster).allowed
        for i in range(4) for where in ("team", "open")]

    assert verdicts == [False, True] * 4  # judged by each namespace's own answer
    assert runs == {"namespace-is-restricted": 2, "typed": 4}
    cluster.add(namespace(name="open", annotations={"example.com/types": "x"}))
    assert not engine.evaluate(make_request("CREATE", service(
        name="late", namespace="open", type="NodePort")), cluster).allowed
    assert runs["namespace-is-restricted"] == 3
