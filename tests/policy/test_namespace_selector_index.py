"""Policies whose namespaceSelector the request's namespace fails are skipped as a group.

Each distinct selector of the policies a (kind, operation) matches is judged once per
request, and the list narrowed to those outcomes is looked up: a Service in a development
namespace passes 100 policies that select production namespaces with no expression run and
no policy named. While the cluster cache is not current nothing is skipped: each such policy
fails as its failurePolicy says, as before, since its namespace's labels are not known.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.policy.test_kind_operation_index import count_executions
from tests.support import namespace, service
from webhook.cluster.memory import MemoryCluster
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import Policy, PolicySet
from webhook.policy.model.request import make_request
from webhook.policy.model.selectors import LabelSelector

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: production-rule-{index}
spec:
  failurePolicy: {failure}
  match:
    kinds: [Service]
    namespaceSelector:
      matchExpressions: [{{key: environment, operator: In, values: [{values}]}}]
  matchConditions:
    - name: not-external
      expression: "object.spec.type != 'ExternalName{index}'"
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: "rule {index}: no NodePort"
"""


def policy_set(folder: Path, count: int, values: str = "production, prod",
               failure: str = "Fail") -> PolicySet:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"rule-{index}.yaml").write_text(
            POLICY.format(index=index, values=values, failure=failure))
    return load_policies(folder)


def cluster() -> MemoryCluster:
    return MemoryCluster([namespace(name="payments", labels={"environment": "production"}),
                          namespace(name="dev", labels={"environment": "development"})])


class Unsynced(MemoryCluster):
    @property
    def synced(self) -> bool:
        return False


def test_a_request_outside_100_policies_namespaces_runs_none_of_them(tmp_path: Path) -> None:
    engine = Engine(policy_set(tmp_path / "policies", 100))
    executions = count_executions(engine)
    judged: list[str] = []
    applies = engine._applies

    def counted(policy: Policy, *args: Any) -> bool:
        judged.append(policy.name)
        return applies(policy, *args)

    # Counted on the instance: evaluate looks the method up there.
    engine._applies = counted  # type: ignore[method-assign]

    decision = engine.evaluate(make_request("CREATE", service(
        name="web", namespace="dev", type="NodePort")), cluster())
    assert decision.allowed and decision.matched_policies == []
    assert executions[0] == 0
    assert judged == [], "no policy is even looked at"

    # The counter counts: in a production namespace every policy runs and refuses.
    decision = engine.evaluate(make_request("CREATE", service(
        name="web", namespace="payments", type="NodePort")), cluster())
    assert len(decision.matched_policies) == 100 and not decision.allowed
    assert executions[0] == 100
    assert len(judged) == 100
    assert decision.violations[0].message == "rule 0: no NodePort"


def test_policies_of_different_selectors_keep_their_order(tmp_path: Path) -> None:
    production = policy_set(tmp_path / "a", 3)
    development = policy_set(tmp_path / "b", 3, values="development")
    renamed = [dataclasses.replace(p, name=f"dev-{p.name}") for p in development.policies]
    interleaved = [policy for pair in zip(production.policies, renamed, strict=True)
                   for policy in pair]
    engine = Engine(PolicySet(policies=interleaved))
    request = make_request("CREATE", service(name="web", namespace="dev", type="NodePort"))

    decision = engine.evaluate(request, cluster())
    assert decision.matched_policies == [p.name for p in renamed]
    # Again, from the narrowed list the first request left: the same answer.
    assert engine.evaluate(request, cluster()).matched_policies == decision.matched_policies


@pytest.mark.parametrize(("failure", "allowed"), [("Fail", False), ("Ignore", True)])
def test_while_the_cache_is_not_current_such_policies_fail_as_their_failure_policy_says(
    tmp_path: Path, failure: str, allowed: bool,
) -> None:
    engine = Engine(policy_set(tmp_path / "policies", 3, failure=failure))
    unsynced = Unsynced(list(cluster().snapshot()))
    decision = engine.evaluate(make_request("CREATE", service(name="web", namespace="dev")),
                               unsynced)
    assert decision.allowed is allowed
    assert len(decision.errors) == 3
    assert all("cluster cache is not current" in f.message for f in decision.errors)


def test_selectors_are_judged_once_per_namespace_object_and_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(policy_set(tmp_path / "policies", 5))
    judged: list[object] = []
    matches = LabelSelector.matches

    def counted(selector: LabelSelector, labels: Any) -> bool:
        judged.append(selector)
        return matches(selector, labels)

    monkeypatch.setattr(LabelSelector, "matches", counted)
    state = cluster()
    request = make_request("CREATE", service(name="web", namespace="dev", type="NodePort"))
    assert engine.evaluate(request, state).allowed
    assert len(judged) == 1  # the five policies share one selector
    assert engine.evaluate(request, state).allowed
    assert len(judged) == 1, "the same Namespace object: its narrowed list is kept"

    # The namespace is relabelled into production: the cache holds a new object, so the
    # selectors are judged again and the production policies now apply.
    state.add(namespace(name="dev", labels={"environment": "production"}))
    decision = engine.evaluate(request, state)
    assert len(judged) == 2
    assert not decision.allowed and len(decision.matched_policies) == 5

    # A namespace the cache does not know is judged by its name alone, once.
    unknown = make_request("CREATE", service(name="web", namespace="nowhere", type="NodePort"))
    assert engine.evaluate(unknown, state).allowed
    assert engine.evaluate(unknown, state).allowed
    assert len(judged) == 3
