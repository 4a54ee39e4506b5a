"""The shipped default policies: their suites pass through the command, every policy has a
suite that covers allow, deny/warn/mutate, UPDATE and DELETE, and the fixtures are real
Kubernetes objects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Mode
from webhook.policy.model.kinds import GATEWAY_GROUP
from webhook.policy.model.policy import INTERNAL_LB_FLAVOURS

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
FLAVOURS = ROOT / "examples" / "flavours"
# Every flavour but the shipped one has an example in examples/flavours/.
OTHER_FLAVOURS = sorted(set(INTERNAL_LB_FLAVOURS) - {"aws"})

# SPEC "Shipped default policies": name -> (kind, mode; None for the mutating policy).
DEFAULTS: dict[str, tuple[frozenset[str], Mode | None]] = {
    "deny-nodeport-in-production": (frozenset({"Service"}), Mode.ENFORCE),
    "limit-loadbalancers-per-namespace": (frozenset({"Service"}), Mode.ENFORCE),
    "internal-loadbalancer": (frozenset({"Service"}), None),
    "deny-external-ips": (frozenset({"Service"}), Mode.ENFORCE),
    "require-ingress-tls-in-production": (frozenset({"Ingress"}), Mode.ENFORCE),
    "require-ingress-class": (frozenset({"Ingress"}), Mode.WARN),
    "unique-ingress-hosts": (
        frozenset({"Ingress", "HTTPRoute", "GRPCRoute", "TLSRoute"}), Mode.ENFORCE
    ),
    "require-loadbalancer-source-ranges": (frozenset({"Service"}), Mode.WARN),
    "deny-ingress-nginx-snippets": (frozenset({"Ingress"}), Mode.ENFORCE),
    "restrict-externalname-services": (frozenset({"Service"}), Mode.WARN),
    "gateway-https-in-production": (frozenset({"Gateway"}), Mode.ENFORCE),
    "restrict-gateway-route-namespaces": (frozenset({"Gateway"}), Mode.ENFORCE),
    "hostnames-owned-by-namespace": (
        frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute"}), Mode.ENFORCE
    ),
    "ingress-hosts-owned-by-namespace": (frozenset({"Ingress"}), Mode.ENFORCE),
    "restrict-wildcard-ingress-hosts": (frozenset({"Ingress"}), Mode.ENFORCE),
    "restrict-wildcard-route-hostnames": (
        frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute"}), Mode.ENFORCE
    ),
    "deny-nginx-org-snippets": (frozenset({"Ingress"}), Mode.ENFORCE),
}


def _edgewarden(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``edgewarden`` command (as a user would) from the repository root."""
    script = Path(sys.executable).with_name("edgewarden")
    command = [str(script)] if script.exists() else [shutil.which("edgewarden") or "edgewarden"]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "HOME": str(tmp_path)}
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _junit_counts(path: Path) -> tuple[int, int]:
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    return len(cases), len(failed)


def _policy_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def _suites(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (file, document)
        for file in sorted(folder.glob("*.test.yaml"))
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8"))
        if document
    ]


def test_shipped_policy_suites_pass_through_the_edgewarden_test_command(tmp_path: Path) -> None:
    junit = tmp_path / "policies.xml"
    result = _edgewarden("test", "policies/", "--junit", str(junit), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    total, failed = _junit_counts(junit)
    assert total >= 60 and failed == 0


def test_internal_lb_flavour_examples_pass_through_the_command(tmp_path: Path) -> None:
    result = _edgewarden("test", "examples/flavours/", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for flavour in OTHER_FLAVOURS:
        assert f"PASS internal-loadbalancer-{flavour}" in result.stdout


def test_edgewarden_validate_accepts_the_shipped_policies(tmp_path: Path) -> None:
    result = _edgewarden("validate", "policies/", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(DEFAULTS)} policies valid" in result.stdout


def test_loading_the_policies_folder_gives_exactly_the_defaults() -> None:
    # What `edgewarden serve --policies policies/` loads: no fixtures, no suites, no
    # flavour examples (those live in examples/flavours/).
    policies = load_policies(POLICIES)
    assert sorted(p.name for p in policies.policies) == sorted(DEFAULTS)
    for policy in policies.policies:
        kinds, mode = DEFAULTS[policy.name]
        assert policy.match.kinds == kinds
        assert "kube-system" in policy.match.exclude.namespaces
        assert policy.description, f"{policy.name} has no edgewarden.dev/description"
        if mode is None:
            assert policy.mutates and not policy.validates
        else:
            assert policy.mode is mode


def test_the_shipped_internal_lb_flavour_is_aws() -> None:
    policy = load_policies(POLICIES / "internal-loadbalancer.yaml").policies[0]
    (mutation,) = policy.mutations
    assert mutation.annotation == INTERNAL_LB_FLAVOURS["aws"]  # type: ignore[union-attr]


@pytest.mark.parametrize("policy_file", _policy_files(POLICIES), ids=lambda p: p.stem)
def test_every_shipped_policy_has_a_suite_beside_it(policy_file: Path) -> None:
    suite = policy_file.with_name(policy_file.stem + ".test.yaml")
    assert suite.is_file(), f"{policy_file.name} has no {suite.name}"
    documents = [d for d in yaml.safe_load_all(suite.read_text(encoding="utf-8")) if d]
    assert any(policy_file.name in d["spec"].get("policies", []) for d in documents)


def _covers(cases: list[dict[str, Any]]) -> dict[str, bool]:
    def judged(case: dict[str, Any]) -> bool:
        expect = case["expect"]
        return (
            bool(expect.get("violations"))
            or expect.get("allowed") is False
            or bool(expect.get("warnings"))
            or expect.get("patched") is True
        )

    def allowed(case: dict[str, Any]) -> bool:
        expect = case["expect"]
        return (
            expect.get("allowed") is True
            and not expect.get("violations")
            and (expect.get("patched") is not True)
        )

    return {
        "allow": any(allowed(c) for c in cases),
        "deny/warn/mutate": any(judged(c) for c in cases),
        "UPDATE": any(c.get("operation") == "UPDATE" for c in cases),
        "DELETE": any(c.get("operation") == "DELETE" for c in cases),
    }


@pytest.mark.parametrize(
    ("suite_file", "suite"),
    [*_suites(POLICIES), *_suites(FLAVOURS)],
    ids=lambda value: value.name if isinstance(value, Path) else "",
)
def test_each_suite_covers_allow_judged_update_and_delete_cases(
    suite_file: Path, suite: dict[str, Any]
) -> None:
    coverage = _covers(suite["spec"]["cases"])
    missing = [what for what, present in coverage.items() if not present]
    assert not missing, f"{suite_file.name} has no {', '.join(missing)} case"


@pytest.mark.parametrize("flavour", OTHER_FLAVOURS)
def test_flavour_examples_differ_from_the_shipped_policy_only_in_flavour(flavour: str) -> None:
    shipped = yaml.safe_load((POLICIES / "internal-loadbalancer.yaml").read_text())
    example_file = FLAVOURS / f"internal-loadbalancer-{flavour}.yaml"
    example = yaml.safe_load(example_file.read_text())
    assert example["spec"]["mutations"] == [{"internalLoadBalancer": {"flavour": flavour}}]
    example["spec"]["mutations"] = shipped["spec"]["mutations"]
    assert example == shipped
    key, value = INTERNAL_LB_FLAVOURS[flavour]
    suite_text = example_file.with_name(example_file.stem + ".test.yaml").read_text()
    assert f'{key}: "{value}"' in suite_text


def test_every_flavours_annotation_counts_as_a_chosen_scheme() -> None:
    # A Service that already carries any flavour's annotation (whatever its value) is left
    # alone by the shipped mutation: its owner chose a scheme.
    shipped = yaml.safe_load((POLICIES / "internal-loadbalancer.yaml").read_text())
    conditions = {c["name"]: c["expression"] for c in shipped["spec"]["matchConditions"]}
    for key, _ in INTERNAL_LB_FLAVOURS.values():
        assert f"'{key}'" in conditions["scheme-not-chosen"], key


def _fixture_objects() -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for file in sorted((POLICIES / "fixtures").rglob("*.yaml")):
        for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            if document:
                name = document["metadata"]["name"]
                objects.append(
                    (f"{file.relative_to(POLICIES)}:{document['kind']}/{name}", document)
                )
    return objects


@pytest.mark.parametrize(
    ("where", "obj"), _fixture_objects(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_fixtures_are_valid_kubernetes_objects(where: str, obj: dict[str, Any]) -> None:
    if str(obj.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/"):
        validate_gateway_object(obj)
        return
    kubernetes_validate.validate(obj, "1.31", strict=True)


GATEWAY_CRDS = Path.home() / ".cache/edgewarden/kube/current/gateway-api-crds/standard"


def validate_gateway_object(obj: dict[str, Any]) -> None:
    """Against the pinned Gateway API CRD's schema (scripts/kube-binaries copies them)."""
    if not GATEWAY_CRDS.is_dir():
        pytest.skip(f"{GATEWAY_CRDS} is missing: run scripts/kube-binaries")
    version = obj["apiVersion"].rpartition("/")[2]
    crds = [d for file in sorted(GATEWAY_CRDS.glob("*.yaml"))
            for d in yaml.safe_load_all(file.read_text(encoding="utf-8"))
            if d and d.get("kind") == "CustomResourceDefinition"]
    for crd in crds:
        if crd["spec"]["names"]["kind"] == obj["kind"]:
            (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
            jsonschema.validate(obj, served["schema"]["openAPIV3Schema"])
            return
    raise AssertionError(f"no Gateway API CRD for {obj['kind']}")


def test_check_admits_a_production_app_exposed_through_an_ingress_with_tls(
    tmp_path: Path,
) -> None:
    result = _edgewarden(
        "check", "-f", "policies/fixtures/manifests/production-shop.yaml", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_denies_nodeport_external_ips_and_ingress_without_tls_in_production(
    tmp_path: Path,
) -> None:
    result = _edgewarden(
        "check",
        "-f",
        "policies/fixtures/manifests/production-exposed.yaml",
        "-o",
        "json",
        tmp_path=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = yaml.safe_load(result.stdout)
    denied = {
        (r["resource"]["name"], f["policy"])
        for r in report["results"]
        for f in r["findings"]
        if f["result"] == "deny"
    }
    warned = {
        (r["resource"]["name"], f["policy"])
        for r in report["results"]
        for f in r["findings"]
        if f["result"] == "warn"
    }
    assert denied == {
        ("web-nodeport", "deny-nodeport-in-production"),
        ("web-external", "deny-external-ips"),
        ("web", "require-ingress-tls-in-production"),
    }
    assert warned == {("web", "require-ingress-class")}
