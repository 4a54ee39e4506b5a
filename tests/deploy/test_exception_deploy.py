"""PolicyExceptions in the kustomize overlays: off unless the component turns them on, the
approver recorded by a webhook that fails closed in every overlay, and a ClusterRole that
lets namespace admins read exceptions but never write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webhook.cli.serve_command import serve_exception_rules
from webhook.registration.render import APPROVAL_WEBHOOK, WebhookSettings, approval_webhook

from .checks import parse_with_the_real_cli
from .conftest import REPO, Manifest, _build, find, one, rendered, rendered_static

READ_VERBS = {"get", "list", "watch"}
VIEW_ROLE = "edgewarden-policyexceptions-view"


def approval_hook(objects: list[Manifest]) -> dict[str, Any]:
    hooks = [h for h in one(objects, "MutatingWebhookConfiguration", "edgewarden-mutating")
             ["webhooks"] if h["name"] == APPROVAL_WEBHOOK]
    assert len(hooks) == 1, "the mutating configuration carries one approval webhook"
    return hooks[0]


def serve_args(objects: list[Manifest]) -> list[str]:
    deployment = one(objects, "Deployment", "edgewarden")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    assert args[0] == "serve"
    return args


def test_the_approval_webhook_fails_closed_in_every_overlay_for_exceptions_only(
        overlay: str) -> None:
    hook = approval_hook(rendered_static(overlay))
    # kind and audit-only fail open for Services; never for the approver of an exception.
    assert hook["failurePolicy"] == "Fail"
    assert hook["rules"] == [{"apiGroups": ["edgewarden.dev"], "apiVersions": ["v1alpha1"],
                              "resources": ["policyexceptions"],
                              "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]
    # Every namespace: the namespace exceptions live in may be edgewarden's own.
    assert "namespaceSelector" not in hook
    service = hook["clientConfig"]["service"]
    assert (service["name"], service["namespace"], service["path"]) == (
        "edgewarden", "edgewarden", "/mutate-policyexception")


def test_the_static_approval_webhook_is_what_webhook_config_renders() -> None:
    static = approval_hook(rendered_static("production"))
    ours = approval_webhook(WebhookSettings())
    assert static == ours


def test_namespace_admins_may_read_exceptions_and_never_write_them(overlay: str) -> None:
    objects = rendered(overlay)
    role = one(objects, "ClusterRole", VIEW_ROLE)
    labels = role["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert role["rules"] == [{"apiGroups": ["edgewarden.dev"], "resources": ["policyexceptions"],
                              "verbs": ["get", "list", "watch"]}]
    # No role aggregated into the built-in ones grants more than reading anything of ours.
    aggregated = [r for r in find(objects, "ClusterRole")
                  if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-")
                         for k in r["metadata"].get("labels", {}))]
    assert aggregated
    for aggregated_role in aggregated:
        for rule in aggregated_role["rules"]:
            assert set(rule["verbs"]) <= READ_VERBS, aggregated_role["metadata"]["name"]


def test_exceptions_are_off_in_every_overlay(overlay: str) -> None:
    params = parse_with_the_real_cli(serve_args(rendered(overlay)))
    assert params["enable_exceptions"] is False
    assert not params["exception_namespace"]


def test_the_component_turns_exceptions_on_for_one_namespace(tmp_path: Path) -> None:
    overlay = tmp_path / "with-exceptions"
    overlay.mkdir()
    production = Path("../" * len(overlay.parts[1:])) / REPO.relative_to("/") / "deploy"
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{production / 'overlays' / 'production'}]\n"
        f"components: [{production / 'components' / 'policy-exceptions'}]\n")
    args = serve_args(list(_build(str(overlay))))
    params = parse_with_the_real_cli(args)
    assert params["enable_exceptions"] is True
    assert params["exception_namespace"] == ["policy-exceptions"]
    rules = serve_exception_rules(params["enable_exceptions"], params["exception_namespace"],
                                  params["max_exception_days"])
    assert rules.enabled and rules.namespaces == frozenset({"policy-exceptions"})
    assert rules.max_days == 90
