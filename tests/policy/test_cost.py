"""Worst-case cost is estimated at load: over-budget expressions are refused or warned about,
nested comprehensions multiply, and schema bounds (maxItems) replace the defaults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import policies_from_yaml as load_policy_text
from webhook.errors import PolicyLoadError
from webhook.policy.cel.checks import PackagedSchemas, Schemas
from webhook.policy.cel.checks.cost import (
    DEFAULT_LIST_ITEMS,
    EXPRESSION_LIMIT,
    EXPRESSION_WARNING,
    POLICY_WARNING,
    CostEstimator,
)
from webhook.policy.cel.syntax import parse
from webhook.policy.load.loader import load_policies
from webhook.policy.load.policy_checks import estimate_policy, root_types

ROOT = Path(__file__).resolve().parents[2]
RULES = "object.spec.rules"


def estimate(expression: str, kind: str = "Ingress", schemas: Schemas | None = None) -> float:
    roots = root_types(kind, schemas or Schemas())
    return CostEstimator(roots, {}, {}).estimate(parse(expression)).cost


def policy(*expressions: str, kind: str = "Ingress") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "edgewarden.dev/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "costly"},
            "spec": {
                "match": {"kinds": [kind]},
                "validations": [{"expression": e} for e in expressions],
            },
        }
    )


def test_a_comprehension_costs_its_body_once_per_element() -> None:
    one = estimate("object.spec.rules[0].host != ''")
    every = estimate(f"{RULES}.all(r, r.host != '')")
    assert every >= DEFAULT_LIST_ITEMS * one / 2


def test_nested_comprehensions_multiply() -> None:
    single = estimate(f"{RULES}.all(r, r.host != '')")
    double = estimate(f"{RULES}.all(r, {RULES}.all(s, r.host != s.host))")
    assert double >= DEFAULT_LIST_ITEMS * single / 2


def test_a_cubic_expression_is_refused_at_load() -> None:
    cubic = f"{RULES}.all(r, {RULES}.all(s, {RULES}.all(t, r.host != t.host)))"
    assert estimate(cubic) > EXPRESSION_LIMIT
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_text(policy(cubic))
    (problem,) = caught.value.problems
    assert problem.field == "spec.validations[0].expression"
    assert "estimated worst-case cost" in problem.message
    assert "over the limit 10,000,000" in problem.message
    assert "list items 100" in problem.message


def test_an_expression_over_the_runtime_budget_loads_with_a_warning() -> None:
    quadratic = f"{RULES}.all(r, {RULES}.all(s, r.host != s.host || r.host + s.host != ''))"
    assert EXPRESSION_WARNING < estimate(quadratic) < EXPRESSION_LIMIT
    loaded = load_policy_text(policy(quadratic))
    (warning,) = loaded.warnings
    assert warning.field == "spec.validations[0].expression"
    assert "over the per-evaluation budget 1,000,000" in warning.message


def test_a_policy_over_its_total_budget_is_refused() -> None:
    # Each under the per-expression limit, together over the policy limit.
    quadratic = f"{RULES}.all(r, {RULES}.all(s, r.host != s.host || r.host + s.host != ''))"
    each = estimate(quadratic)
    count = int(100_000_000 // each) + 1
    expressions = [f"{quadratic} || {i} == 0" for i in range(count)]
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_text(policy(*expressions))
    assert any(
        p.field == "metadata.name" and "cost of the policy" in p.message
        for p in caught.value.problems
    )


class BoundedRules:
    """A schema provider whose Ingress says spec.rules has at most 5 items."""

    def schema(self, group: str, version: str, kind: str) -> Mapping[str, Any] | None:
        found = PackagedSchemas().schema(group, version, kind)
        if kind != "Ingress" or found is None:
            return found
        bounded = yaml.safe_load(yaml.safe_dump(dict(found)))
        bounded["properties"]["spec"]["properties"]["rules"]["maxItems"] = 5
        return bounded  # type: ignore[no-any-return]


def test_a_schema_bound_replaces_the_default_size() -> None:
    expression = f"{RULES}.all(r, {RULES}.all(s, r.host != s.host))"
    unbounded = estimate(expression)
    bounded = estimate(expression, schemas=Schemas(BoundedRules()))
    assert bounded * 100 < unbounded


def test_shipped_policies_are_within_budget() -> None:
    loaded = load_policies(ROOT / "policies")
    estimates = {p.name: estimate_policy(p, Schemas()) for p in loaded.policies}
    costs = {name: e.total for name, e in estimates.items()}
    # Every shipped policy is linear in its input (the TLS policy through sets.of, the
    # external-IP policy through the hashed sets.contains, the hostname policies through one
    # regular expression of the grants): none is near a budget, neither an expression's nor
    # a policy's (a tenth of each).
    assert [w for w in loaded.warnings if "cost" in w.message] == []
    # The other warnings: the three policies that use sets.of(), edgewarden's own function.
    assert {w.file.rsplit("/", 1)[-1] for w in loaded.warnings} == {
        "hostnames-owned-by-namespace.yaml", "require-ingress-tls-in-production.yaml",
        "restrict-wildcard-route-hostnames.yaml"}
    # unique-ingress-hosts builds one key per host and path, so it is rules x paths (100 x
    # 100 assumed) by nature; still well under the warning.
    keys = costs.pop("unique-ingress-hosts")
    assert keys < EXPRESSION_WARNING / 2
    largest = {name: max(cost for _, cost in e.expressions) for name, e in estimates.items()
               if name in costs}
    # The hostname policies match each host (100 assumed) against one regular expression of
    # the namespace's grants, which the estimate prices by the pattern's length (a 256
    # character annotation, escaped): linear in the hosts, still well under the warning.
    for name in ("hostnames-owned-by-namespace", "ingress-hosts-owned-by-namespace",
                 "restrict-wildcard-route-hostnames", "restrict-wildcard-ingress-hosts"):
        assert largest.pop(name) < EXPRESSION_WARNING / 2, name
        assert costs.pop(name) < EXPRESSION_WARNING / 2, name
    assert max(largest.values()) < EXPRESSION_WARNING / 10, largest
    assert max(costs.values()) < POLICY_WARNING / 10, costs
    # Those that read a few fields stay tiny; the others are linear in what they scan (every
    # annotation, listener, rule host or hostname, and the namespace's grants).
    reads_a_few_fields = ("deny-external-ips", "deny-nodeport-in-production",
                          "internal-loadbalancer", "limit-loadbalancers-per-namespace",
                          "require-ingress-class")
    assert max(costs[name] for name in reads_a_few_fields) < 1_000, costs


def test_the_estimate_says_which_sizes_it_assumed() -> None:
    loaded = load_policies(ROOT / "policies" / "require-ingress-tls-in-production.yaml")
    assumed = dict(estimate_policy(loaded.policies[0], Schemas()).assumed)
    assert assumed["list items"] == DEFAULT_LIST_ITEMS


QUADRATIC_TLS = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: tls-by-scanning}
spec:
  match: {kinds: [Ingress]}
  validations:
    - expression: >-
        object.spec.rules.all(r, object.spec.tls.exists(t, r.host in t.hosts
          || ('*' + r.host.substring(r.host.indexOf('.'))) in t.hosts))
"""


def test_validate_prints_the_warning_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "tls.yaml").write_text(QUADRATIC_TLS)
    result = subprocess.run(
        [sys.executable, "-c", "from webhook.cli import main; main()", "validate",
         str(tmp_path / "tls.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert f"! {tmp_path / 'tls.yaml'}:" in result.stderr
    assert "estimated worst-case cost" in result.stderr
