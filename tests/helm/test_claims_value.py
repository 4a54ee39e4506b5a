"""The chart's ``claims`` value: on by default (the Claim CRD, a Role for claims in the
release namespace, serve without --no-claims); off drops the Role and passes --no-claims."""

from __future__ import annotations

from typing import Any

from .chart import NAMESPACE, render


def serve_args(objects: list[dict[str, Any]]) -> list[str]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "edgewarden"]
    args: list[str] = container["args"]
    return args


def claims_role(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Role", "RoleBinding")
            and o["metadata"]["name"] == "edgewarden-claims"]


def test_claims_are_on_by_default_with_their_crd_and_a_role_in_the_release_namespace() -> None:
    objects = render()
    assert "--no-claims" not in serve_args(objects)
    [crd] = [o for o in objects if o["kind"] == "CustomResourceDefinition"
             and o["metadata"]["name"] == "claims.edgewarden.dev"]
    assert crd["spec"]["scope"] == "Namespaced"
    roles = claims_role(objects)
    assert sorted(o["kind"] for o in roles) == ["Role", "RoleBinding"]
    assert all(o["metadata"]["namespace"] == NAMESPACE for o in roles)
    [role] = [o for o in roles if o["kind"] == "Role"]
    assert role["rules"] == [{"apiGroups": ["edgewarden.dev"], "resources": ["claims"],
                              "verbs": ["get", "list", "create", "update", "delete"]}]


def test_claims_off_passes_no_claims_and_grants_nothing_for_them() -> None:
    objects = render({"claims": False})
    assert "--no-claims" in serve_args(objects)
    assert claims_role(objects) == []
