"""`edgewarden test` refuses cases that test nothing: no policy matched, or a namespace the
suite's cluster fixtures lack (a typo that would make every selector miss)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import Result

from tests.support import cli

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: deny-nodeport-in-production}
spec:
  match:
    kinds: [Service]
    namespaceSelector: {matchLabels: {environment: production}}
  validations:
    - expression: "object.spec.type != 'NodePort'"
"""
CLUSTER = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {environment: production}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {environment: development}}
"""
NODEPORT = (
    "{apiVersion: v1, kind: Service, metadata: {name: web}, "
    "spec: {type: NodePort, ports: [{port: 80}]}}"
)


def _suite(tmp_path: Path, case: str) -> Result:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "cluster.yaml").write_text(CLUSTER)
    suite = f"""\
apiVersion: edgewarden.dev/v1alpha1
kind: PolicyTest
metadata: {{name: mistakes}}
spec:
  policies: [policy.yaml]
  cluster: [cluster.yaml]
  cases:
{textwrap.indent(textwrap.dedent(case), "    ")}"""
    (tmp_path / "mistakes.test.yaml").write_text(suite)
    return cli.run("test", str(tmp_path))


def test_a_namespace_missing_from_the_cluster_fixtures_is_an_error(tmp_path: Path) -> None:
    result = _suite(tmp_path, f"""\
        - name: NodePort in production is denied
          namespace: paymnets
          object: {NODEPORT}
          expect: {{allowed: true}}
        """)
    assert result.exit_code == 1, result.output
    assert "namespace 'paymnets' is not in the suite's cluster fixtures" in result.output


def test_a_case_about_an_unknown_namespace_says_so(tmp_path: Path) -> None:
    result = _suite(tmp_path, f"""\
        - name: an unknown namespace has no environment label
          namespace: elsewhere
          unknownNamespace: true
          object: {NODEPORT}
          expect: {{allowed: true, matched: []}}
        """)
    assert result.exit_code == 0, result.output


def test_unknown_namespace_on_a_known_one_is_an_error(tmp_path: Path) -> None:
    result = _suite(tmp_path, f"""\
        - name: says unknown but it is known
          namespace: dev
          unknownNamespace: true
          object: {NODEPORT}
          expect: {{allowed: true, matched: []}}
        """)
    assert result.exit_code == 1
    assert "unknownNamespace: true, but namespace 'dev' is in the cluster fixtures" in (
        result.output
    )


def test_a_case_that_matches_no_policy_is_an_error(tmp_path: Path) -> None:
    result = _suite(tmp_path, f"""\
        - name: NodePort in dev is allowed
          namespace: dev
          object: {NODEPORT}
          expect: {{allowed: true}}
        """)
    assert result.exit_code == 1
    assert "the case matched no policy" in result.output


def test_expect_matched_states_which_policies_apply(tmp_path: Path) -> None:
    result = _suite(tmp_path, f"""\
        - name: NodePort in dev is allowed, no policy applies
          namespace: dev
          object: {NODEPORT}
          expect: {{allowed: true, matched: []}}
        - name: NodePort in production is judged by the policy
          namespace: payments
          object: {NODEPORT}
          expect: {{allowed: false, matched: [deny-nodeport-in-production]}}
        """)
    assert result.exit_code == 0, result.output
    wrong = _suite(tmp_path, f"""\
        - name: claims no policy applies in production
          namespace: payments
          object: {NODEPORT}
          expect: {{allowed: false, matched: []}}
        """)
    assert wrong.exit_code == 1
    assert "matched: expected [], got ['deny-nodeport-in-production']" in wrong.output


def test_validate_reads_policies_from_standard_input() -> None:
    good = cli.run("validate", "-", stdin=POLICY)
    assert good.exit_code == 0, good.output
    assert "deny-nodeport-in-production" in good.output and "<stdin>" in good.output
    bad = cli.run("validate", "-", stdin=POLICY.replace("kinds", "kind"))
    assert bad.exit_code == 1
    assert "<stdin>:6: spec.match.kind: unknown field 'kind'" in bad.output
