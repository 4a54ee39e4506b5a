"""One version, in one place: ``webhook/__init__.py``'s ``__version__``. Everything that
names a release derives it from there (the wheel's metadata, scripts/image's tag, the
release workflow's tag check) or is held to it here (the chart, the manifests' image tag)."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from webhook import __version__

from .images import REPO

SEMVER = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
# The extraction scripts/image and the release workflow both use (no Python needed there).
SED_VERSION = r's/^__version__ = "\(.*\)"$/\1/p'


def test_the_version_is_a_semantic_version() -> None:
    assert SEMVER.fullmatch(__version__), __version__


def test_the_wheel_takes_its_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"], "a second copy of the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "webhook.__version__"}


def test_the_shell_extraction_reads_the_package_version() -> None:
    said = subprocess.run(["sed", "-n", SED_VERSION, str(REPO / "webhook" / "__init__.py")],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert said.strip() == __version__
    for path in (REPO / "scripts" / "image", REPO / ".github" / "workflows" / "release.yml"):
        assert SED_VERSION in path.read_text(), f"{path.relative_to(REPO)} reads it elsewhere"


def test_the_chart_is_versioned_with_the_package() -> None:
    chart = yaml.safe_load((REPO / "deploy" / "helm" / "edgewarden" / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["version"] == __version__


def test_the_manifests_name_the_packages_image_tag() -> None:
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert containers, "the Deployment has no container"
    assert [c["image"] for c in containers] == [f"edgewarden:{__version__}"]
    overlay = yaml.safe_load(
        (REPO / "deploy" / "overlays" / "production" / "kustomization.yaml").read_text())
    assert overlay["images"], "the production overlay sets no image"
    assert {image["newTag"] for image in overlay["images"]} == {__version__}


def test_the_release_workflow_publishes_what_the_version_names() -> None:
    workflow = yaml.safe_load(
        (REPO / ".github" / "workflows" / "release.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    trigger = workflow.get("on", workflow.get(True))
    assert trigger == {"push": {"tags": ["v*.*.*"]}}
    steps = workflow["jobs"]["version"]["steps"]
    check = next(step["run"] for step in steps if step.get("id") == "version")
    assert '"v$version" != "$GITHUB_REF_NAME"' in check
    assert "Chart.yaml" in check
