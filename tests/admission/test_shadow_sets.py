"""Which policies enforce and which are candidates (webhook/admission/shadow.py ``split``):
``spec.shadow`` policies are candidates, the --shadow folder's first."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.support import policies_from_yaml
from webhook.admission.shadow import split
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet

POLICIES = Path(__file__).parents[2] / "policies"
CANDIDATE = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: deny-nodeport-in-production}
spec:
  shadow: true
  match: {kinds: [Service]}
  validations:
    - expression: "!has(object.spec.type) || object.spec.type != 'NodePort'"
      message: "NodePort is refused everywhere"
"""


def test_a_revision_on_trial_keeps_the_enforced_version_serving() -> None:
    (candidate,) = policies_from_yaml(CANDIDATE).policies
    assert candidate.shadow, "spec.shadow is read from the document"
    enforced = load_policies(POLICIES / "deny-nodeport-in-production.yaml").policies
    served, candidates = split(PolicySet((*enforced, candidate)), None)
    assert served.policies == enforced
    assert candidates.policies == (candidate,)


def test_of_two_candidates_of_one_name_the_first_the_shadow_folders_is_judged() -> None:
    (candidate,) = policies_from_yaml(CANDIDATE).policies
    folder = dataclasses.replace(candidate, description="the folder's")
    flagged = dataclasses.replace(candidate, description="the file's")
    served, candidates = split(PolicySet((folder, flagged)), None)
    assert served.policies == ()
    assert [p.description for p in candidates.policies] == ["the folder's"]
    # Given apart (LoadedPolicies.build(shadow=...)), the folder's comes first too.
    _, given = split(PolicySet((flagged,)), PolicySet((folder,)))
    assert [p.description for p in given.policies] == ["the folder's"]
