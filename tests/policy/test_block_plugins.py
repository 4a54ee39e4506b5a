"""A policy block from a package edgewarden has never heard of, found through the
``edgewarden.blocks`` entry point: the loader, the schema and CRD, the static checks, the
engine, ``edgewarden validate`` and ``check``, and ``edgewarden serve`` all use it.

The toy package (tests/policy/toy_block.py) is written into a temporary folder; nothing in
webhook/ is edited or imported differently for it.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import service
from tests.support.process_output import ProcessOutput
from webhook.errors import PolicyLoadError
from webhook.policy.blocks import registry
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.crd import policy_crd
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Mode
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.ports import EmptyCluster
from webhook.policy.model.request import make_request

from .toy_block import BLOCK, MESSAGE, PACKAGE, TOY_POLICY, install_toy_block

EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]
WAIT = 30.0


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The toy package, not yet on the path."""
    return install_toy_block(tmp_path / "site")


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy package on ``sys.path``, its entry point read; gone again afterwards."""
    monkeypatch.syspath_prepend(str(site))
    registry.rediscover()
    yield site
    monkeypatch.undo()
    sys.modules.pop(PACKAGE, None)
    registry.rediscover()
    assert BLOCK not in registry.names()


def _load(folder: Path, text: str) -> PolicySet:
    folder.mkdir(exist_ok=True)
    (folder / "policy.yaml").write_text(text)
    return load_policies(folder / "policy.yaml")


def test_without_the_package_the_block_is_an_unknown_field(tmp_path: Path) -> None:
    registry.rediscover()
    with pytest.raises(PolicyLoadError) as raised:
        _load(tmp_path / "policies", TOY_POLICY)
    problems = {problem.field: problem.message for problem in raised.value.problems}
    assert sorted(problems) == ["spec", f"spec.{BLOCK}"]
    assert problems[f"spec.{BLOCK}"].startswith(f"unknown field {BLOCK!r}")
    assert problems["spec"] == (
        "a policy needs at least one of validations, limit, unique or mutations"
    )


def test_the_engine_judges_with_the_installed_block(installed: Path, tmp_path: Path) -> None:
    assert registry.names()[-1] == BLOCK  # after the four built in
    policies = _load(tmp_path / "policies", TOY_POLICY)
    policy = policies.policies[0]
    assert policy.block(BLOCK) is not None and policy.validates and not policy.mutates
    assert [rule.kind for rule in policies.webhook_rules(mutating=False)] == ["Service"]
    engine = Engine(policies)

    unlabelled = make_request("CREATE", service(name="web", namespace="shop"))
    decision = engine.evaluate(unlabelled, EmptyCluster())
    assert not decision.allowed
    assert [(v.policy, v.mode, v.message) for v in decision.violations] == [
        ("services-carry-a-team", Mode.ENFORCE, f"{MESSAGE}: team")
    ]

    labelled = service(name="web", namespace="shop", labels={"team": "a"})
    assert engine.evaluate(make_request("CREATE", labelled), EmptyCluster()).allowed
    # The block's CEL runs through the engine's bindings like any other expression.
    external = service(name="web", namespace="shop", type="ExternalName")
    assert engine.evaluate(make_request("CREATE", external), EmptyCluster()).allowed


def test_the_schema_and_the_crd_carry_the_block(installed: Path) -> None:
    spec = policy_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    assert spec["properties"][BLOCK]["required"] == ["labels"]
    assert {"required": [BLOCK]} in spec["anyOf"]


def test_the_blocks_problems_name_file_line_and_field(installed: Path, tmp_path: Path) -> None:
    broken = TOY_POLICY.replace("labels: [team]", "labels: [team, cost centre]").replace(
        "object.spec.type ==", "object.spec.typo =="
    )
    with pytest.raises(PolicyLoadError) as raised:
        _load(tmp_path / "policies", broken)
    problems = {problem.field: problem for problem in raised.value.problems}
    assert sorted(problems) == [f"spec.{BLOCK}.labels[1]"]
    assert problems[f"spec.{BLOCK}.labels[1]"].line == 9
    assert problems[f"spec.{BLOCK}.labels[1]"].message == "a label key has no spaces"

    # With the build fine, the static checks type-check the block's CEL against Service.
    typo = TOY_POLICY.replace("object.spec.type ==", "object.spec.typo ==")
    with pytest.raises(PolicyLoadError) as raised:
        _load(tmp_path / "policies", typo)
    assert [(p.field, p.line) for p in raised.value.problems] == [(f"spec.{BLOCK}.unless", 10)]
    assert "typo" in raised.value.problems[0].message


def _environment(site: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "400"}


def test_validate_and_check_use_the_installed_block(site: Path, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policy.yaml").write_text(TOY_POLICY)
    manifest = tmp_path / "services.yaml"
    manifest.write_text(json.dumps(service(name="web", namespace="shop")))
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")
    environment = _environment(site)

    validate = subprocess.run([*EDGEWARDEN, "validate", str(policies)], capture_output=True,
                              text=True, timeout=120, env=environment)
    assert validate.returncode == 0, validate.stderr
    assert f"services-carry-a-team (Enforce; Service; {BLOCK})" in validate.stdout

    check = subprocess.run(
        [*EDGEWARDEN, "check", "-f", str(manifest), "--policies", str(policies),
         "--cluster-state", str(cluster), "-o", "json"],
        capture_output=True, text=True, timeout=120, env=environment,
    )
    assert check.returncode == 1, check.stderr
    assert f"{MESSAGE}: team" in check.stdout
    assert "Traceback" not in check.stderr

    # The same command without the package: the policy itself is refused.
    without = subprocess.run([*EDGEWARDEN, "validate", str(policies)], capture_output=True,
                             text=True, timeout=120)
    assert without.returncode == 1
    assert f"spec.{BLOCK}" in without.stdout + without.stderr


def _review(obj: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4b0c6f9e-toy",
            "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "namespace": "shop",
            "name": "web",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
        },
    }


def test_serve_answers_a_review_with_the_installed_block(site: Path, tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "policy.yaml").write_text(TOY_POLICY)
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--dev", "--port", "0"], cwd=tmp_path, env=_environment(site),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        port = output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1)
        context = ssl.create_default_context(cafile=tmp_path / ".edgewarden-dev" / "ca.crt")
        answers = {}
        for name, labels in (("unlabelled", None), ("labelled", {"team": "a"})):
            review = _review(service(name="web", namespace="shop", labels=labels))
            reply = httpx.post(f"https://localhost:{port}/validate", json=review,
                               verify=context, timeout=WAIT)
            assert reply.status_code == 200, reply.text
            answers[name] = reply.json()["response"]
        assert answers["unlabelled"]["allowed"] is False
        assert f"{MESSAGE}: team" in answers["unlabelled"]["status"]["message"]
        assert answers["labelled"]["allowed"] is True
    finally:
        process.terminate()
        process.wait(timeout=WAIT)


def test_a_block_named_like_a_built_in_one_is_refused() -> None:
    from webhook.policy.blocks.limit import LimitBlock

    with pytest.raises(registry.BlockRegistryError, match="'limit' is already registered"):
        registry.register(LimitBlock())
    with pytest.raises(registry.BlockRegistryError, match="is not a"):
        registry.register("requiredLabels")  # type: ignore[arg-type]
    assert registry.names() == ("validations", "limit", "unique", "mutations")


def test_a_plugin_that_does_not_load_is_one_line_naming_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ew_broken_block").mkdir(parents=True)
    (site / "ew_broken_block" / "__init__.py").write_text("raise RuntimeError('secret value')\n")
    metadata = site / "ew_broken_block-0.1.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: ew-broken-block\n"
                                       "Version: 0.1\n")
    (metadata / "entry_points.txt").write_text(
        "[edgewarden.blocks]\nbroken = ew_broken_block:Block\n"
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policy.yaml").write_text(TOY_POLICY)
    result = subprocess.run([*EDGEWARDEN, "validate", str(policies)], capture_output=True,
                            text=True, timeout=120, env=_environment(site))
    assert result.returncode == 2, result.stdout + result.stderr
    assert ("block plug-in 'broken' (ew_broken_block:Block) does not load: RuntimeError"
            in result.stderr)
    assert "Traceback" not in result.stderr and "secret value" not in result.stderr


def test_export_keeps_a_policy_with_a_plugin_block_on_the_webhook(
    installed: Path, tmp_path: Path,
) -> None:
    from webhook.native.coverage import Where, assess

    with_validation = TOY_POLICY + (
        "  validations:\n    - expression: \"object.spec.type != 'NodePort'\"\n"
    )
    policy = _load(tmp_path / "policies", with_validation).policies[0]
    coverage = assess(policy)
    # Exporting the validations alone would drop the block's verdict.
    assert coverage.where is Where.WEBHOOK and not coverage.validating
    assert f"{BLOCK}: a plug-in block runs on the webhook only" in coverage.reasons
