"""PolicyExceptions in the engine: what they admit, what they say, and when they stop."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support import namespace, service
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.documents import exception_from_object, load_exceptions
from webhook.policy.model.exceptions import ExceptionSet, ExceptionState, parse_rfc3339
from webhook.policy.model.request import make_request

from .conftest import engine_for

EXPIRES = "2030-06-01T00:00:00Z"
EXPIRY = parse_rfc3339(EXPIRES)
BEFORE, AT, AFTER = EXPIRY - 1, EXPIRY, EXPIRY + 1

NODEPORT_POLICY = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {{name: deny-nodeport}}
spec:
  mode: {mode}
  match: {{kinds: [Service]}}
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: NodePort is not allowed
"""


def exceptions_yaml(tmp_path: Path, text: str) -> ExceptionSet:
    file = tmp_path / "exceptions.yaml"
    file.write_text(textwrap.dedent(text))
    return load_exceptions(file)


def legacy_exception(
    tmp_path: Path, *, match: str = "{names: [legacy]}", expires: str | None = EXPIRES,
    policies: str = "[deny-nodeport]",
) -> ExceptionSet:
    expiry = f"\n  expiresAt: {expires}" if expires else ""
    return exceptions_yaml(tmp_path, f"""
        apiVersion: edgewarden.dev/v1alpha1
        kind: PolicyException
        metadata: {{name: legacy-nodeport, namespace: payments}}
        spec:
          policies: {policies}
          match: {match}
          ticket: PLAT-1234
          reason: the old gateway needs a NodePort until it is retired
          approvedBy: alice@example.com""" + textwrap.indent(expiry, "        "))


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster([namespace(name="payments"), namespace(name="shop")])


def nodeport(name: str = "legacy", ns: str = "payments", **labels: str) -> dict[str, object]:
    return service(name=name, namespace=ns, type="NodePort", labels=labels or None)


def judge(engine: Engine, obj: dict[str, object], cluster: MemoryCluster,
          exceptions: ExceptionSet, at: float | None):
    return engine.evaluate(make_request("CREATE", obj, judged_at=at), cluster, exceptions)


def test_an_exception_admits_with_a_warning_naming_it_its_ticket_and_expiry(
    tmp_path: Path, cluster: MemoryCluster
) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    decision = judge(engine, nodeport(), cluster, legacy_exception(tmp_path), BEFORE)
    assert decision.allowed
    assert decision.violations == []
    [exemption] = decision.exemptions
    assert (exemption.policy, exemption.would) == ("deny-nodeport", "deny")
    assert decision.warnings == [
        "PolicyException payments/legacy-nodeport (ticket PLAT-1234, expires "
        "2030-06-01T00:00:00Z) admits what deny-nodeport would deny: NodePort is not allowed"
    ]
    assert decision.audit_annotations == {
        "deny-nodeport.exception": "payments/legacy-nodeport ticket=PLAT-1234 "
        "expiresAt=2030-06-01T00:00:00Z would deny: NodePort is not allowed"
    }


@pytest.mark.parametrize("at", [AT, AFTER], ids=["at-the-instant", "after"])
def test_an_expired_exception_is_ignored(tmp_path: Path, cluster: MemoryCluster,
                                         at: float) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    decision = judge(engine, nodeport(), cluster, legacy_exception(tmp_path), at)
    assert not decision.allowed
    assert decision.exemptions == ()
    assert [v.policy for v in decision.violations] == ["deny-nodeport"]


def test_a_request_without_a_time_honours_no_exception(
    tmp_path: Path, cluster: MemoryCluster
) -> None:
    """Every exception expires (the loader requires expiresAt): a caller that forgot the
    clock cannot stretch one past its date."""
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    assert judge(engine, nodeport(), cluster, legacy_exception(tmp_path), BEFORE).allowed
    assert not judge(engine, nodeport(), cluster, legacy_exception(tmp_path), None).allowed


@pytest.mark.parametrize(("obj", "covered"), [
    (nodeport("legacy", app="gateway"), True),
    (nodeport("legacy"), False),                      # the name, not the labels
    (nodeport("other", app="gateway"), False),        # the labels, not the name
    (nodeport("legacy", "shop", app="gateway"), False),  # another namespace
])
def test_names_and_selector_together_must_both_match(
    tmp_path: Path, cluster: MemoryCluster, obj: dict[str, object], covered: bool
) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    exceptions = legacy_exception(
        tmp_path, match="{names: [legacy], selector: {matchLabels: {app: gateway}}}")
    assert judge(engine, obj, cluster, exceptions, BEFORE).allowed is covered


def test_a_kind_restriction_leaves_other_kinds_to_the_policy(
    tmp_path: Path, cluster: MemoryCluster
) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    exceptions = legacy_exception(tmp_path, match="{names: [legacy], kinds: [Ingress]}")
    assert not judge(engine, nodeport(), cluster, exceptions, BEFORE).allowed


def test_an_exception_for_another_policy_exempts_nothing(
    tmp_path: Path, cluster: MemoryCluster
) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    exceptions = legacy_exception(tmp_path, policies="[deny-external-ips]")
    assert not judge(engine, nodeport(), cluster, exceptions, BEFORE).allowed


@pytest.mark.parametrize("mode", ["Warn", "Audit"])
def test_warn_and_audit_findings_are_exempted_too(
    tmp_path: Path, cluster: MemoryCluster, mode: str
) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode=mode))
    decision = judge(engine, nodeport(), cluster, legacy_exception(tmp_path), BEFORE)
    assert decision.violations == []
    assert [e.would for e in decision.exemptions] == [mode.lower()]
    # The policy's own warning or annotation is replaced by the exception's.
    assert len(decision.warnings) == 1 and "PolicyException" in decision.warnings[0]
    assert list(decision.audit_annotations) == ["deny-nodeport.exception"]


def test_an_evaluation_error_under_fail_is_exempted(tmp_path: Path,
                                                    cluster: MemoryCluster) -> None:
    engine = engine_for("""
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: deny-nodeport}
        spec:
          failurePolicy: Fail
          match: {kinds: [Service]}
          validations:
            - expression: "object.metadata.annotations['missing'] == 'x'"
    """)
    decision = judge(engine, nodeport(), cluster, legacy_exception(tmp_path), BEFORE)
    assert decision.allowed
    assert [e.source.value for e in decision.exemptions] == ["error"]
    assert decision.errors, "the error is still recorded (the reload canary reads it)"


def test_a_limit_is_exempted_and_reserves_nothing(tmp_path: Path) -> None:
    engine = engine_for("""
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: one-loadbalancer}
        spec:
          match: {kinds: [Service]}
          limit: {where: "object.spec.type == 'LoadBalancer'", max: 1}
    """)
    cluster = MemoryCluster([namespace(name="payments"),
                             service(name="first", namespace="payments", type="LoadBalancer")])
    exceptions = legacy_exception(tmp_path, policies="[one-loadbalancer]",
                                  match="{names: [second]}")
    second = service(name="second", namespace="payments", type="LoadBalancer")
    decision = judge(engine, second, cluster, exceptions, BEFORE)
    assert decision.allowed and decision.limit_claims == []
    assert "has 1 of 1" in decision.exemptions[0].message
    assert not judge(engine, second, cluster, exceptions, AFTER).allowed


def test_an_exempted_object_is_not_mutated(tmp_path: Path, cluster: MemoryCluster) -> None:
    engine = engine_for("""
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: internal-lb}
        spec:
          match: {kinds: [Service]}
          mutations: [{setAnnotations: {example.com/internal: "true"}}]
    """)
    exceptions = legacy_exception(tmp_path, policies="[internal-lb]", match="{names: [public]}")
    public = service(name="public", namespace="payments", type="LoadBalancer")
    decision = judge(engine, public, cluster, exceptions, BEFORE)
    assert decision.patch == [] and decision.mutated_object is None
    [exemption] = decision.exemptions
    assert exemption.would == "patch"
    assert "add /metadata/annotations" in exemption.message
    assert judge(engine, public, cluster, exceptions, AFTER).patch


def test_without_exceptions_the_decision_carries_none(cluster: MemoryCluster) -> None:
    engine = engine_for(NODEPORT_POLICY.format(mode="Enforce"))
    decision = engine.evaluate(make_request("CREATE", nodeport(), judged_at=BEFORE), cluster)
    assert decision.exemptions == () and not decision.allowed


# -- states -------------------------------------------------------------------------------


def test_states_for_reports(tmp_path: Path) -> None:
    [exception] = legacy_exception(tmp_path)
    assert exception.state_at(EXPIRY - 30 * 86400) is ExceptionState.ACTIVE
    assert exception.state_at(EXPIRY - 14 * 86400) is ExceptionState.EXPIRING
    assert exception.state_at(EXPIRY) is ExceptionState.EXPIRED


# -- loading ------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "problem"), [
    ("policies: [deny-nodeport]\n  match: {}",
     "spec.match: an exception matches objects by names, selector or both"),
    (f"policies: [deny-nodeport]\n  match: {{selector: {{matchLabels: {{}}}}}}\n"
     f"  expiresAt: '{EXPIRES}'",
     "spec.match.selector: an empty selector would exempt the whole namespace"),
    ("policies: [deny-nodeport]\n  match: {names: [a]}\n  expiresAt: '2030-06-01'",
     "spec.expiresAt: '2030-06-01' is a date"),
    ("policies: [deny-nodeport]\n  match: {names: [a]}\n  expiresAt: '2030-06-01T00:00:00'",
     "spec.expiresAt: 2030-06-01T00:00:00 has no UTC offset"),
    ("policies: []\n  match: {names: [a]}", "spec.policies"),
    ("policies: [deny-nodeport]\n  match: {names: [a]}\n  owner: me",
     "spec.owner: unknown field 'owner'"),
])
def test_a_malformed_exception_is_refused_with_file_line_and_field(
    tmp_path: Path, spec: str, problem: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyException\n"
                    "metadata: {name: bad, namespace: payments}\nspec:\n  " + spec + "\n")
    with pytest.raises(PolicyLoadError) as raised:
        load_exceptions(file)
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"{file}:")


def test_a_file_exception_must_name_its_namespace(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: PolicyException\n"
                    "metadata: {name: bad}\nspec: {policies: [p], match: {names: [a]}}\n")
    with pytest.raises(PolicyLoadError, match="missing required field 'namespace'"):
        load_exceptions(file)


def test_an_unquoted_yaml_timestamp_is_a_date_time(tmp_path: Path) -> None:
    [exception] = legacy_exception(tmp_path, expires="2030-06-01T00:00:00Z")
    assert exception.expires_at == EXPIRY


def test_a_cluster_object_loads_as_its_file_would() -> None:
    obj = {
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "legacy", "namespace": "payments", "uid": "u", "generation": 3,
                     "resourceVersion": "7", "managedFields": [{"manager": "kubectl"}]},
        "spec": {"policies": ["deny-nodeport"], "match": {"names": ["legacy"]},
                 "expiresAt": EXPIRES},
        "status": {"anything": True},
    }
    exception = exception_from_object(obj)
    assert (exception.ref, exception.expires_at) == ("payments/legacy", EXPIRY)
    assert str(exception.source) == "PolicyException/payments/legacy"
    broken = {**obj, "spec": {"policies": ["deny-nodeport"], "match": {},
                              "expiresAt": EXPIRES}}
    with pytest.raises(PolicyLoadError, match=r"^PolicyException/payments/legacy: spec\.match"):
        exception_from_object(broken)
