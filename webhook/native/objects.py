"""The native objects of one policy: a ValidatingAdmissionPolicy and its Binding for the
validations, a MutatingAdmissionPolicy and its Binding for the mutations (both
``admissionregistration.k8s.io/v1``, as the pinned Kubernetes serves them).

Each is named ``edgewarden-<policy>`` and labelled with the policy's name, so
``kubectl get validatingadmissionpolicies -l app.kubernetes.io/managed-by=edgewarden`` lists
what was exported and ``kubectl delete`` with the same selector takes it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from webhook.policy.model.decision import FailurePolicy, Mode
from webhook.policy.model.policy import (
    InternalLoadBalancer,
    Match,
    NamedExpression,
    Policy,
    SetAnnotations,
    Validation,
)
from webhook.policy.model.selectors import LabelSelector

API_VERSION = "admissionregistration.k8s.io/v1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "edgewarden"}
POLICY_LABEL = "edgewarden.dev/policy"
NAME_LABEL = "kubernetes.io/metadata.name"  # every Namespace carries its name here
ACTIONS = {Mode.ENFORCE: ["Deny"], Mode.WARN: ["Warn"], Mode.AUDIT: ["Audit"]}


def native_name(policy: Policy) -> str:
    return f"edgewarden-{policy.name}"


def cel_string(text: str) -> str:
    """A CEL string literal for ``text`` (JSON's escapes are CEL's too)."""
    return json.dumps(text)


def cel_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(cel_string(item) for item in sorted(items)) + "]"


def _metadata(policy: Policy) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": native_name(policy),
        "labels": {**MANAGED_BY, POLICY_LABEL: policy.name},
    }
    if policy.description:
        metadata["annotations"] = {"edgewarden.dev/description": policy.description}
    return metadata


def selector(labels: LabelSelector | None, *, exclude_names: Iterable[str] = ()) -> dict[str, Any]:
    """A metav1.LabelSelector; excluded namespace names become a NotIn on their name label."""
    result: dict[str, Any] = {}
    if labels is not None and labels.match_labels:
        result["matchLabels"] = dict(labels.match_labels)
    expressions = [
        {"key": r.key, "operator": r.operator, **({"values": sorted(r.values)} if r.values else {})}
        for r in (labels.match_expressions if labels is not None else ())
    ]
    excluded = sorted(exclude_names)
    if excluded:
        expressions.append({"key": NAME_LABEL, "operator": "NotIn", "values": excluded})
    if expressions:
        result["matchExpressions"] = expressions
    return result


def match_constraints(match: Match) -> dict[str, Any]:
    rules = [{
        "apiGroups": [ref.group],
        "apiVersions": list(ref.versions),
        "resources": [ref.resource],
        "operations": sorted(match.operations),
        "scope": "Namespaced" if ref.namespaced else "Cluster",
    } for ref in match.resources]
    constraints: dict[str, Any] = {"resourceRules": rules, "matchPolicy": "Equivalent"}
    namespaces = selector(match.namespace_selector, exclude_names=match.exclude.namespaces)
    if namespaces:
        constraints["namespaceSelector"] = namespaces
    objects = selector(match.object_selector)
    if objects:
        constraints["objectSelector"] = objects
    return constraints


# What the API server lets a matchCondition read (not namespaceObject, not variables).
MATCH_CONDITION_VARIABLES = frozenset({"object", "oldObject", "request", "authorizer"})


def native_condition(condition: NamedExpression) -> bool:
    """Whether the API server can evaluate ``condition`` as a matchCondition."""
    expression = condition.expression
    return (expression.variables <= MATCH_CONDITION_VARIABLES
            and not expression.policy_variables)


def folded_conditions(policy: Policy) -> list[NamedExpression]:
    """The matchConditions that read namespaceObject or variables: the API server does not
    offer those to matchConditions, so they guard each validation (or mutation) instead.
    The meaning is the same: where one is false the policy finds nothing; where one fails
    the policy's failurePolicy decides."""
    return [c for c in policy.match_conditions if not native_condition(c)]


def _guard(policy: Policy) -> str:
    """``(c1) && (c2)`` of the folded conditions, or "" when there are none."""
    return " && ".join(f"({c.expression.source})" for c in folded_conditions(policy))


def match_conditions(policy: Policy) -> list[dict[str, str]]:
    """The policy's matchConditions, after the exclusions of users and groups (those the API
    server cannot evaluate there are folded into the validations: folded_conditions)."""
    conditions: list[dict[str, str]] = []
    exclude = policy.match.exclude
    if exclude.usernames:
        conditions.append({"name": "edgewarden-exclude-usernames",
                           "expression": f"!(request.userInfo.username in "
                                         f"{cel_list(exclude.usernames)})"})
    if exclude.groups:
        conditions.append({"name": "edgewarden-exclude-groups",
                           "expression": "!has(request.userInfo.groups) || "
                                         "!request.userInfo.groups.exists(g, g in "
                                         f"{cel_list(exclude.groups)})"})
    conditions += [_named(condition) for condition in policy.match_conditions
                   if native_condition(condition)]
    return conditions


def _named(named: NamedExpression) -> dict[str, str]:
    return {"name": named.name, "expression": named.expression.source}


def _validation(validation: Validation, guard: str = "") -> dict[str, str]:
    source = validation.expression.source
    entry = {"expression": f"!({guard}) || ({source})" if guard else source}
    if validation.message:
        entry["message"] = " ".join(validation.message.split())
    if validation.message_expression is not None:
        entry["messageExpression"] = validation.message_expression.source
    return entry


def _common_spec(policy: Policy) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "failurePolicy": "Fail" if policy.failure_policy is FailurePolicy.FAIL else "Ignore",
        "matchConstraints": match_constraints(policy.match),
    }
    conditions = match_conditions(policy)
    if conditions:
        spec["matchConditions"] = conditions
    if policy.variables:
        spec["variables"] = [_named(variable) for variable in policy.variables]
    return spec


def validating_objects(policy: Policy) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its Binding (Deny, Warn or Audit by the mode)."""
    name = native_name(policy)
    spec = _common_spec(policy)
    guard = _guard(policy)
    spec["validations"] = [_validation(v, guard) for v in policy.validations]
    return [
        {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
         "metadata": _metadata(policy), "spec": spec},
        {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": _metadata(policy),
         "spec": {"policyName": name, "validationActions": ACTIONS[policy.mode]}},
    ]


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def annotations_patch(annotations: dict[str, str]) -> str:
    """CEL for a JSONPatch adding each annotation only where absent (as the webhook does),
    and the annotations map itself when the object has none."""
    whole = "{" + ", ".join(f"{cel_string(k)}: {cel_string(v)}"
                            for k, v in sorted(annotations.items())) + "}"
    each = " + ".join(
        f"({cel_string(key)} in object.metadata.annotations ? [] : [JSONPatch{{op: \"add\", "
        f"path: {cel_string('/metadata/annotations/' + _escape_pointer(key))}, "
        f"value: {cel_string(value)}}}])"
        for key, value in sorted(annotations.items()))
    return (f"!has(object.metadata.annotations) ? [JSONPatch{{op: \"add\", "
            f"path: \"/metadata/annotations\", value: {whole}}}] : {each}")


def mutating_objects(policy: Policy) -> list[dict[str, Any]]:
    """The MutatingAdmissionPolicy (one JSONPatch per mutation) and its Binding."""
    name = native_name(policy)
    mutations = []
    for mutation in policy.mutations:
        if isinstance(mutation, InternalLoadBalancer):
            key, value = mutation.annotation
            annotations = {key: value}
        elif isinstance(mutation, SetAnnotations):
            annotations = dict(mutation.annotations)
        else:  # coverage.assess keeps policies with other mutations on the webhook
            raise ValueError(f"{policy.name}: only annotation mutations are exported")
        patch = annotations_patch(annotations)
        guard = _guard(policy)
        if guard:
            patch = f"!({guard}) ? [] : ({patch})"
        mutations.append({"patchType": "JSONPatch", "jsonPatch": {"expression": patch}})
    spec = _common_spec(policy)
    spec["mutations"] = mutations
    spec["reinvocationPolicy"] = "Never"
    return [
        {"apiVersion": API_VERSION, "kind": "MutatingAdmissionPolicy",
         "metadata": _metadata(policy), "spec": spec},
        {"apiVersion": API_VERSION, "kind": "MutatingAdmissionPolicyBinding",
         "metadata": _metadata(policy), "spec": {"policyName": name}},
    ]
