"""The CRDs: the shipped ones are what webhook/policy/load/crd.py generates from the loader's
schemas, they are structural, the API server's view of a document agrees with the loader's,
and the PolicyReports edgewarden writes fit the wg-policy CRDs it ships.

(A real API server installing them and refusing a malformed Policy is in
tests/crds_apiserver, which needs the control plane of tests/kube.)"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import policies_from_yaml
from webhook.errors import PolicyLoadError
from webhook.policy.load.crd import CRDS, exception_crd, policy_crd

from .checks import _strict
from .conftest import REPO

CRD_DIR = REPO / "deploy" / "crds"
REPORT_CRDS = REPO / "deploy" / "components" / "policy-report-crds"


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"])


def validator(crd: dict[str, Any]) -> jsonschema.protocols.Validator:
    """The CRD's schema as the API server applies it with strict field validation."""
    schema = _strict(copy.deepcopy(schema_of(crd)))
    # Kubernetes checks metadata itself (the CRD may only restrict the name).
    metadata = schema["properties"]["metadata"]
    metadata.pop("additionalProperties", None)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def nodes(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(schema, dict):
        found.append((path, schema))
        for key in ("properties",):
            for name, sub in (schema.get(key) or {}).items():
                found += nodes(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                found += nodes(schema[key], f"{path}[{key}]")
    return found


def test_the_shipped_crds_are_what_the_schemas_generate() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "generate-crds"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    for name, build in CRDS.items():
        assert yaml.safe_load((CRD_DIR / name).read_text()) == build()


@pytest.mark.parametrize("crd", [policy_crd(), exception_crd()], ids=["Policy", "PolicyException"])
def test_the_schemas_are_structural(crd: dict[str, Any]) -> None:
    found = nodes(schema_of(crd))
    assert len(found) > 1, "the schema has nodes below its root"
    for path, node in found:
        where = path or "<root>"
        assert "$ref" not in node and "uniqueItems" not in node, where
        assert node.get("additionalProperties") is not False, where
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), where
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in ("string", "integer"), where
    metadata = schema_of(crd)["properties"]["metadata"]
    assert set(metadata.get("properties", {})) <= {"name", "generateName"}


def test_the_policy_crd_has_a_status_subresource_and_the_exception_is_namespaced() -> None:
    policy, exception = policy_crd(), exception_crd()
    assert policy["spec"]["scope"] == "Cluster"
    assert policy["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert exception["spec"]["scope"] == "Namespaced"
    status = schema_of(policy)["properties"]["status"]["properties"]
    assert {"conditions", "observedGeneration", "loadedAt"} <= set(status)


def test_every_shipped_policy_is_a_valid_policy_object() -> None:
    check = validator(policy_crd())
    files = [p for p in (REPO / "policies").glob("*.yaml") if not p.name.endswith(".test.yaml")]
    assert files
    for file in files:
        documents = [d for d in yaml.safe_load_all(file.read_text()) if d]
        assert documents, f"{file.name} holds no document"
        for document in documents:
            problems = [e.message for e in check.iter_errors(document)]
            assert not problems, f"{file.name}: {problems}"


MALFORMED = {
    "an unknown field": "spec: {match: {kind: [Service]}, validations: [{expression: 'true'}]}",
    "a mode that does not exist": (
        "spec: {mode: Deny, match: {kinds: [Service]}, validations: [{expression: 'true'}]}"),
    "nothing to do": "spec: {match: {kinds: [Service]}}",
    "a kind it cannot judge": (
        "spec: {match: {kinds: [Pod]}, validations: [{expression: 'true'}]}"),
    "both max and maxExpression": (
        "spec: {match: {kinds: [Service]}, limit: {max: 1, maxExpression: '1'}}"),
    "two mutations in one entry": (
        "spec: {match: {kinds: [Service]}, mutations: [{setAnnotations: {a: b}, "
        "internalLoadBalancer: {}}]}"),
}


@pytest.mark.parametrize("spec", MALFORMED.values(), ids=MALFORMED.keys())
def test_the_crd_refuses_what_the_loader_refuses(spec: str) -> None:
    text = f"apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p}}\n{spec}\n"
    with pytest.raises(PolicyLoadError):
        policies_from_yaml(text)
    assert list(validator(policy_crd()).iter_errors(yaml.safe_load(text)))


def test_the_exception_crd_refuses_an_empty_match_and_checks_the_expiry_format() -> None:
    check = validator(exception_crd())
    good: dict[str, Any] = {
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"policies": ["p"], "match": {"names": ["a"]},
                 "expiresAt": "2030-01-01T00:00:00Z"},
    }
    assert not list(check.iter_errors(good))
    # The API server checks format: date-time (jsonschema here needs an extra package to).
    expires = schema_of(exception_crd())["properties"]["spec"]["properties"]["expiresAt"]
    assert expires == {"type": "string", "format": "date-time"}
    for spec in ({"match": {}}, {"policies": []}, {"match": {"selector": {}}}):
        bad = copy.deepcopy(good)
        bad["spec"].update(spec)
        assert list(check.iter_errors(bad)), spec


def test_the_policyreports_edgewarden_writes_fit_the_shipped_crds(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import webhook.cli  # noqa: F401
    from webhook.cli.app import app

    fixtures = REPO / "tests" / "audit" / "fixtures"
    result = CliRunner().invoke(app, ["audit", "--cluster-state",
                                      str(fixtures / "cluster-state.yaml"), "--policies",
                                      str(fixtures / "policies"), "-o", "policyreport"])
    assert result.exit_code == 0, result.output
    documents = yaml.safe_load(result.stdout)["items"]
    assert documents, "the audit wrote reports"
    crds = {}
    for file in REPORT_CRDS.glob("wgpolicyk8s.io_*.yaml"):
        crd = yaml.safe_load(file.read_text())
        crds[crd["spec"]["names"]["kind"]] = validator(crd)
    assert set(crds) == {"PolicyReport", "ClusterPolicyReport"}
    for document in documents:
        problems = [e.message for e in crds[document["kind"]].iter_errors(document)]
        assert not problems, problems


def test_the_report_crds_come_from_a_named_pinned_source() -> None:
    files = sorted(REPORT_CRDS.glob("wgpolicyk8s.io_*.yaml"))
    assert files, f"no report CRDs in {REPORT_CRDS}"
    for file in files:
        head = file.read_text().splitlines()[0]
        assert "github.com/kyverno/kyverno v1.13.4" in head and "h1:" in head
