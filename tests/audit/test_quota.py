"""`edgewarden quota`: the ResourceQuota backstop for every LoadBalancer cap."""

from __future__ import annotations

import pytest
import yaml

from .helpers import CLUSTER, POLICIES, run


def quotas(*args: str) -> dict[str, dict]:
    result = run("quota", "--cluster-state", CLUSTER, "--policies", POLICIES, *args)
    assert result.exit_code == 0, result.output
    return {q["metadata"]["namespace"]: q for q in yaml.safe_load_all(result.stdout) if q}


def test_each_namespace_gets_a_quota_with_its_loadbalancer_cap() -> None:
    found = quotas()
    assert {ns: q["spec"]["hard"]["services.loadbalancers"] for ns, q in found.items()} == {
        "production": "2",
        "staging": "2",
        "team-a": "1",  # the namespace annotation lowers the cap
    }
    quota = found["production"]
    assert quota["kind"] == "ResourceQuota"
    assert quota["metadata"]["name"] == "edgewarden-loadbalancers"
    assert quota["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "edgewarden"}


def test_excluded_namespaces_get_no_quota() -> None:
    assert "kube-system" not in quotas()


def test_namespace_flag_limits_the_output() -> None:
    assert list(quotas("-n", "team-a")) == ["team-a"]


def test_quotas_are_valid_kubernetes_objects() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for quota in quotas().values():
        kubernetes_validate.validate(quota, "1.30", strict=True)


def test_policies_without_a_loadbalancer_limit_give_no_quota(tmp_path) -> None:
    policy = tmp_path / "only-tls.yaml"
    policy.write_text(
        "apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata: {name: only-class}\n"
        "spec:\n  mode: Warn\n  match: {kinds: [Ingress]}\n"
        "  validations: [{expression: 'has(object.spec.ingressClassName)'}]\n"
    )
    result = run("quota", "--cluster-state", CLUSTER, "--policies", str(policy))
    assert result.exit_code == 0
    assert result.stdout.startswith("# no limit policy caps LoadBalancer Services")


def test_shipped_limit_policy_gives_the_same_caps() -> None:
    from pathlib import Path

    shipped = Path(__file__).parents[2] / "policies"
    if not (shipped / "limit-loadbalancers-per-namespace.yaml").is_file():
        pytest.skip("shipped policies not present")
    result = run("quota", "--cluster-state", CLUSTER, "--policies", str(shipped))
    caps = {
        q["metadata"]["namespace"]: q["spec"]["hard"]["services.loadbalancers"]
        for q in yaml.safe_load_all(result.stdout)
        if q
    }
    assert caps["production"] == "2"
    assert caps["team-a"] == "1"
