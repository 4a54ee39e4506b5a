"""A candidate (``spec.shadow: true``) is never exported as a native object: the API server
has no shadow mode, so a ValidatingAdmissionPolicy made of it would enforce it; it stays on
the webhook, and hybrid mode (--except-exported) keeps it there."""

from __future__ import annotations

from tests.support import policies_from_yaml
from webhook.native.coverage import Where, assess, webhook_share
from webhook.native.export import export

CANDIDATE = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: refuse-nodeport-everywhere}
spec:
  shadow: true
  match: {kinds: [Service]}
  validations:
    - expression: "object.spec.type != 'NodePort'"
      message: "NodePort opens a port on every node"
"""


def test_a_shadow_policy_is_not_exported_and_stays_on_the_webhook() -> None:
    candidates = policies_from_yaml(CANDIDATE)
    enforced = policies_from_yaml(CANDIDATE.replace("  shadow: true\n", ""))
    assert assess(enforced.policies[0]).where is Where.NATIVE, "the same policy, enforced"

    coverage = assess(candidates.policies[0])
    assert coverage.where is Where.WEBHOOK
    assert "spec.shadow" in coverage.reasons[0]
    assert export(candidates).objects == []
    assert webhook_share(candidates).policies == candidates.policies
