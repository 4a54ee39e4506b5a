"""The engine's decisions for matching, modes, failure policies and variables."""

from __future__ import annotations

import dataclasses

from tests.support import namespace, service
from webhook.cluster.memory import MemoryCluster
from webhook.policy.model.decision import Decision, Mode, Violation, ViolationSource
from webhook.policy.model.request import UserInfo

from .conftest import engine_for, make_request

NODEPORT = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: no-nodeport}
spec:
  mode: {mode}
  match:
    kinds: [Service]
    operations: [CREATE, UPDATE]
    namespaceSelector:
      matchExpressions: [{key: environment, operator: In, values: [production, prod]}]
    exclude: {namespaces: [kube-system], usernames: [ci-bot], groups: [system:masters]}
  validations:
    - expression: "object.spec.type != 'NodePort'"
      messageExpression: "'Service ' + object.metadata.name + ' is NodePort: use an Ingress'"
"""


def nodeport_engine(mode: str = "Enforce", **kwargs: bool):
    return engine_for(NODEPORT.replace("{mode}", mode), **kwargs)


def test_nodeport_in_production_is_denied_with_the_policy_message(production_cluster) -> None:
    decision = nodeport_engine().evaluate(
        make_request("CREATE", service(name="web", namespace="payments", type="NodePort")),
        production_cluster,
    )
    assert not decision.allowed
    assert decision.deny_message() == "[no-nodeport] Service web is NodePort: use an Ingress"
    assert decision.violations[0].source is ViolationSource.VALIDATION


def test_label_value_prod_counts_as_production(production_cluster) -> None:
    decision = nodeport_engine().evaluate(
        make_request("CREATE", service(name="web", namespace="shop", type="NodePort")),
        production_cluster,
    )
    assert not decision.allowed


def test_namespace_without_labels_or_unknown_is_not_production(production_cluster) -> None:
    engine = nodeport_engine()
    for ns in ("bare", "never-seen", "dev"):
        decision = engine.evaluate(
            make_request("CREATE", service(name="web", namespace=ns, type="NodePort")),
            production_cluster,
        )
        assert decision.allowed, ns
        assert decision.violations == []


def test_operation_not_matched_is_ignored(production_cluster) -> None:
    old = service(name="web", namespace="payments", type="NodePort")
    decision = nodeport_engine().evaluate(make_request("DELETE", None, old), production_cluster)
    assert decision.allowed and not decision.matched_policies


def test_excluded_namespace_user_and_group_are_skipped() -> None:
    cluster = MemoryCluster([namespace(name="kube-system", labels={"environment": "production"})])
    cluster.add(namespace(name="payments", labels={"environment": "production"}))
    engine = nodeport_engine()
    svc = service(name="web", namespace="kube-system", type="NodePort")
    assert engine.evaluate(make_request("CREATE", svc), cluster).allowed
    svc = service(name="web", namespace="payments", type="NodePort")
    bot = UserInfo("ci-bot", ("system:authenticated",))
    admin = UserInfo("alice", ("system:masters",))
    assert engine.evaluate(make_request("CREATE", svc, user=bot), cluster).allowed
    assert engine.evaluate(make_request("CREATE", svc, user=admin), cluster).allowed
    someone = UserInfo("bob", ("devs",))
    assert not engine.evaluate(make_request("CREATE", svc, user=someone), cluster).allowed


def test_namespace_selector_can_use_the_automatic_name_label() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: only-payments}
        spec:
          match:
            kinds: [Service]
            namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: payments}}
          validations: [{expression: "false", message: "nope"}]
        """
    )
    cluster = MemoryCluster([namespace(name="payments", labels={})])
    assert not engine.evaluate(
        make_request("CREATE", service(name="a", namespace="payments")), cluster
    ).allowed
    assert engine.evaluate(
        make_request("CREATE", service(name="a", namespace="other")), cluster
    ).allowed


def test_warn_mode_allows_with_a_warning(production_cluster) -> None:
    decision = nodeport_engine("Warn").evaluate(
        make_request("CREATE", service(name="web", namespace="payments", type="NodePort")),
        production_cluster,
    )
    assert decision.allowed
    assert decision.warnings == ["no-nodeport: Service web is NodePort: use an Ingress"]
    assert decision.violations[0].mode is Mode.WARN


def test_audit_mode_allows_and_annotates(production_cluster) -> None:
    decision = nodeport_engine("Audit").evaluate(
        make_request("CREATE", service(name="web", namespace="payments", type="NodePort")),
        production_cluster,
    )
    assert decision.allowed and not decision.warnings
    assert decision.audit_annotations == {"no-nodeport": "Service web is NodePort: use an Ingress"}


def test_force_audit_turns_enforce_into_audit(production_cluster) -> None:
    decision = nodeport_engine(force_audit=True).evaluate(
        make_request("CREATE", service(name="web", namespace="payments", type="NodePort")),
        production_cluster,
    )
    assert decision.allowed
    assert decision.violations[0].mode is Mode.AUDIT
    assert "no-nodeport" in decision.audit_annotations


MISSING_FIELD = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: reads-annotations}
spec:
  failurePolicy: {failure}
  match: {kinds: [Service]}
  validations:
    - expression: "object.metadata.annotations['team'] != ''"
"""


def test_evaluation_error_with_fail_denies_and_names_policy_and_expression() -> None:
    engine = engine_for(MISSING_FIELD.replace("{failure}", "Fail"))
    decision = engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x")), MemoryCluster()
    )
    assert not decision.allowed
    violation = decision.violations[0]
    assert violation.source is ViolationSource.ERROR
    assert "object.metadata.annotations['team']" in violation.message
    assert "annotations" in violation.message


def test_evaluation_error_with_ignore_allows_and_records_the_error() -> None:
    engine = engine_for(MISSING_FIELD.replace("{failure}", "Ignore"))
    decision = engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x")), MemoryCluster()
    )
    assert decision.allowed and decision.violations == []
    assert decision.errors and decision.errors[0].policy == "reads-annotations"
    assert decision.errors[0].ignored


def test_match_conditions_gate_the_policy() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: lb-only}
        spec:
          match: {kinds: [Service]}
          matchConditions:
            - {name: is-lb, expression: "object.spec.type == 'LoadBalancer'"}
          validations: [{expression: "false", message: "LBs are judged"}]
        """
    )
    cluster = MemoryCluster()
    lb = engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x", type="LoadBalancer")), cluster
    )
    assert not lb.allowed
    assert engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x")), cluster
    ).allowed


def test_variables_compose_and_are_visible_to_validations_and_messages() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: vars}
        spec:
          match: {kinds: [Service]}
          variables:
            - {name: ports, expression: "object.spec.ports.map(p, p.port)"}
            - {name: privileged, expression: "variables.ports.exists(p, p < 1024)"}
          validations:
            - expression: "!variables.privileged"
              messageExpression: "'port ' + string(variables.ports[0]) + ' is below 1024'"
        """
    )
    decision = engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x")), MemoryCluster()
    )
    assert not decision.allowed
    assert "below 1024" in decision.violations[0].message


def test_message_falls_back_to_the_failed_expression() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: plain}
        spec:
          match: {kinds: [Service]}
          validations: [{expression: "object.spec.type == 'ClusterIP'"}]
        """
    )
    decision = engine.evaluate(
        make_request("CREATE", service(name="a", namespace="x", type="NodePort")), MemoryCluster()
    )
    assert decision.violations[0].message == "failed expression: object.spec.type == 'ClusterIP'"


def test_object_selector_matches_old_or_new_object_on_update() -> None:
    engine = engine_for(
        """
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: labelled}
        spec:
          match: {kinds: [Service], objectSelector: {matchLabels: {tier: edge}}}
          validations: [{expression: "false", message: "edge services are frozen"}]
        """
    )
    labelled = service(name="a", namespace="x", labels={"tier": "edge"})
    plain = service(name="a", namespace="x")
    cluster = MemoryCluster()
    assert not engine.evaluate(make_request("UPDATE", plain, labelled), cluster).allowed
    assert not engine.evaluate(make_request("UPDATE", labelled, plain), cluster).allowed
    assert engine.evaluate(make_request("UPDATE", plain, plain), cluster).allowed


def test_policies_for_other_kinds_are_not_consulted(production_cluster) -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "namespace": "payments"},
        "spec": {},
    }
    decision = nodeport_engine().evaluate(make_request("CREATE", ingress), production_cluster)
    assert decision.allowed and decision.matched_policies == []


LAZY = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: lazy}
spec:
  match: {kinds: [Service]}
  variables:
    - name: weight
      expression: "int(object.metadata.annotations['weight'])"
  validations:
    - expression: "{guard} || variables.weight < 10"
"""


def _weighted(weight: str) -> dict:
    return service(name="a", namespace="x", annotations={"weight": weight})


def test_variables_are_lazy_a_short_circuit_never_reads_a_failing_one() -> None:
    engine = engine_for(LAZY.replace("{guard}", "true"))
    decision = engine.evaluate(make_request("CREATE", _weighted("heavy")), MemoryCluster())
    assert decision.allowed and decision.errors == []


def test_a_failing_variable_that_is_read_is_the_error_reported() -> None:
    engine = engine_for(LAZY.replace("{guard}", "false"))
    decision = engine.evaluate(make_request("CREATE", _weighted("heavy")), MemoryCluster())
    assert not decision.allowed
    (violation,) = decision.violations
    assert violation.source is ViolationSource.ERROR
    assert "variable 'weight' failed" in violation.message
    assert engine.evaluate(make_request("CREATE", _weighted("3")), MemoryCluster()).allowed


def test_a_decisions_written_init_sets_every_field() -> None:
    """Decision's ``__init__`` is written out (webhook/policy/model/decision.py says why): it
    takes every field by name and sets each (a field added to the dataclass and not to
    ``__init__`` fails here), and its defaults are fresh (no list shared between two)."""
    fields = [f.name for f in dataclasses.fields(Decision)]
    given = {  # a value of each field's type (the compiled __init__ checks types), each new
        "allowed": False, "violations": [Violation("p", Mode.ENFORCE, "m")],
        "warnings": ["w"], "audit_annotations": {"k": "v"}, "patch": [{"op": "add"}],
        "mutations": [], "mutated_object": {"kind": "Service"}, "limit_claims": [],
        "key_claims": [], "matched_policies": ["p"], "errors": [], "exemptions": (),
        "spent": 1.5}
    assert sorted(given) == sorted(fields)  # a new field: add it here and to __init__
    decision = Decision(**given)  # type: ignore[arg-type]
    assert {name: getattr(decision, name) for name in given} == given
    default = Decision(spent=2.5)
    for name in fields:
        getattr(default, name)
    assert (default.allowed, default.spent, default.exemptions) == (True, 2.5, ())
    assert default.violations is not Decision().violations
