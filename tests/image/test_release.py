"""The release workflow (.github/workflows/release.yml), checked without GitHub: actionlint
passes on every workflow, and the release publishes what issue 23 asks for, from the build
CI tests: the image of scripts/image for two architectures under one index, with an SBOM and
build provenance attested and a keyless signature; the chart as an OCI artifact; the wheel
by PyPI trusted publishing (no stored token)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .images import REPO, in_ci

WORKFLOWS = REPO / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"


def actionlint() -> Path:
    configured = os.environ.get("EDGEWARDEN_KUBE_CACHE")
    cache = Path(configured) if configured else Path.home() / ".cache" / "edgewarden" / "kube"
    tool = cache / "current" / "actionlint"
    if not os.access(tool, os.X_OK):
        reason = f"actionlint is not built in {tool.parent}: run scripts/kube-binaries"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the workflows must be checked)")
        pytest.skip(reason)
    return tool


def release() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(RELEASE.read_text())
    return workflow


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = release()["jobs"][job]["steps"]
    assert found, f"job {job} has no steps"
    return found


def uses(job: str) -> list[str]:
    return [step["uses"].split("@")[0] for step in steps(job) if "uses" in step]


def runs(job: str) -> str:
    return "\n".join(step["run"] for step in steps(job) if "run" in step)


def test_every_workflow_is_actionlint_clean() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert RELEASE in workflows
    result = subprocess.run([str(actionlint()), "-no-color", *map(str, workflows)],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_by_scripts_image_for_two_architectures() -> None:
    job = release()["jobs"]["image"]
    arches = [entry["arch"] for entry in job["strategy"]["matrix"]["include"]]
    assert sorted(arches) == ["amd64", "arm64"]
    assert 'scripts/image --arch "$ARCH"' in runs("image")
    assert "podman manifest push --all" in runs("manifest")


def test_the_image_gets_an_sbom_provenance_and_a_keyless_signature() -> None:
    job = release()["jobs"]["manifest"]
    assert job["permissions"]["id-token"] == "write"
    assert {"anchore/sbom-action", "actions/attest-sbom", "actions/attest-build-provenance",
            "sigstore/cosign-installer"} <= set(uses("manifest"))
    attest = [s for s in steps("manifest") if s.get("uses", "").startswith("actions/attest")]
    assert attest and all(s["with"]["push-to-registry"] is True for s in attest)
    assert "cosign sign --yes --recursive" in runs("manifest")


def test_the_chart_is_pushed_as_an_oci_artifact_with_the_packages_version() -> None:
    script = runs("chart")
    assert 'helm package deploy/helm/edgewarden --version "$VERSION" --app-version "$VERSION"' \
        in script
    assert 'helm push "edgewarden-$VERSION.tgz" "$CHARTS"' in script
    assert release()["env"]["CHARTS"].startswith("oci://")


def test_the_published_chart_names_the_published_image() -> None:
    """The chart job rewrites values.yaml's image.repository line to the release's image;
    the line it rewrites must be there (else the chart would point at nothing)."""
    script = runs("chart")
    assert 'sed -i "s|^  repository: edgewarden\\$|  repository: $IMAGE|"' in script
    values = (REPO / "deploy" / "helm" / "edgewarden" / "values.yaml").read_text()
    assert values.splitlines().count("  repository: edgewarden") == 1
    assert yaml.safe_load(values)["image"]["repository"] == "edgewarden"


def test_the_wheel_goes_to_pypi_by_trusted_publishing() -> None:
    job = release()["jobs"]["pypi"]
    assert job["permissions"] == {"id-token": "write"}
    publish = [s for s in job["steps"] if s.get("uses", "").startswith("pypa/gh-action-pypi")]
    assert len(publish) == 1
    assert not set(publish[0].get("with", {})) & {"password", "user"}, "a stored token"


def test_no_job_gets_more_than_reading_unless_it_says_so() -> None:
    workflow = release()
    assert workflow["permissions"] == {"contents": "read"}
    writers = {name for name, job in workflow["jobs"].items()
               if any(v == "write" for v in job.get("permissions", {}).values())}
    assert writers == {"image", "manifest", "chart", "wheel", "pypi", "github-release"}
    # Secrets reach scripts through env, never pasted into them by the expression engine.
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            assert "secrets." not in step.get("run", ""), (name, step.get("name"))


def test_actions_are_pinned_by_commit() -> None:
    """A tag can be moved under a workflow that may sign and publish; a commit cannot. The
    one exception: PyPA asks for its publisher's release/v1 branch (its job holds nothing
    but the OIDC token PyPI trusts)."""
    moving = {"pypa/gh-action-pypi-publish"}
    refs = [step["uses"] for job in release()["jobs"].values() for step in job["steps"]
            if "uses" in step]
    assert refs
    unpinned = [ref for ref in refs if ref.split("@")[0] not in moving
                and not re.fullmatch(r"[0-9a-f]{40}", ref.split("@")[1])]
    assert unpinned == []
