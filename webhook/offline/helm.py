"""Judging a Helm chart: what ``helm template`` renders from it, as ``helm install`` would send.

Templates are Go templates, not YAML, until Helm renders them (``{{- if ... }}`` is what made
the pre-commit hook say "a mapping key must be a scalar"); rendering is left to Helm itself.
helm is taken from PATH, else from where ``scripts/kube-binaries`` caches the one it builds
(``~/.cache/edgewarden/kube/current/helm``), as kubectl is for kustomize.

Every rendered object keeps the template it came from (Helm's ``# Source:`` comment), so a
report names ``charts/shop/templates/service.yaml`` rather than a line of a stream nobody
has on disk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from webhook.errors import ManifestError
from webhook.offline.manifests import Location, Manifest, manifests_of, parse_documents

HELM_CHART_FILE = "Chart.yaml"
RENDER_TIMEOUT_SECONDS = 300
# Helm writes this line before every document it renders: `# Source: shop/templates/svc.yaml`.
_SOURCE = re.compile(r"^# Source: (?P<path>\S.*?)\s*$", re.MULTILINE)


def cached_helm() -> Path:
    return Path.home() / ".cache" / "edgewarden" / "kube" / "current" / "helm"


def find_helm() -> str:
    """helm on PATH, else the cached build; a ManifestError saying what to do otherwise."""
    found = shutil.which("helm")
    if found:
        return found
    cached = cached_helm()
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    raise ManifestError(
        "judging a Helm chart runs `helm template`, and there is no helm on PATH: install "
        "Helm 3 (https://helm.sh/docs/intro/install/), or render the chart yourself and pipe "
        "it in: helm template NAME CHART | edgewarden check -f -"
    )


def chart_metadata(chart: Path) -> dict[str, object]:
    """The chart's Chart.yaml as a mapping; a ManifestError when it is not one."""
    path = chart / HELM_CHART_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{chart}: no {HELM_CHART_FILE} in it, not a Helm chart") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ManifestError(f"{path}: cannot be read as YAML: {error}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a mapping, not a Helm chart")
    return data


def is_library_chart(chart: Path) -> bool:
    """A library chart (``type: library``) renders nothing: Helm refuses to template it."""
    return chart_metadata(chart).get("type") == "library"


def render_chart(chart: Path, *, namespace: str | None = None,
                 values: list[Path] | None = None, helm: str | None = None) -> list[Manifest]:
    """The objects ``helm template`` renders from ``chart``, in Helm's order.

    The release is named after the chart (its Chart.yaml ``name``), in ``namespace``
    (``.Release.Namespace``) when one is given."""
    metadata = chart_metadata(chart)
    name = str(metadata.get("name") or chart.resolve().name)
    command = [helm or find_helm(), "template", name, str(chart)]
    if namespace:
        command += ["--namespace", namespace]
    for file in values or []:
        command += ["--values", str(file)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=RENDER_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ManifestError(f"helm template {chart}: could not run {command[0]}: {error}") from None
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit code {result.returncode}"
        hint = ("; vendor the chart's dependencies first: helm dependency build "
                f"{chart}" if "missing in charts/ directory" in detail else "")
        raise ManifestError(f"helm template {chart} failed: {detail}{hint}")
    return located_render(result.stdout, chart, name)


def located_render(text: str, chart: Path, name: str) -> list[Manifest]:
    """The objects of a render, each located at the template Helm says it came from."""
    stream = f"<helm template {chart}>"
    documents = parse_documents(text, stream)
    sources = [(text.count("\n", 0, match.start()) + 1, match["path"])
               for match in _SOURCE.finditer(text)]
    manifests = manifests_of(documents, stream)
    located: list[Manifest] = []
    # manifests_of keeps each object's document index: the document's line finds its source.
    for manifest in manifests:
        index = manifest.location.document if manifest.location is not None else None
        line = documents[index].line if index is not None else None
        source = _source_before(sources, line)
        if source is None:
            located.append(manifest)
            continue
        file = _template_path(chart, name, source)
        located.append(Manifest(manifest.obj, Location(f"<helm template {file}>", index, None)))
    return located


def _source_before(sources: list[tuple[int, str]], line: int | None) -> str | None:
    if line is None:
        return None
    found = None
    for source_line, path in sources:
        if source_line > line:
            break
        found = path
    return found


def _template_path(chart: Path, name: str, source: str) -> str:
    """``shop/templates/svc.yaml`` (Helm names the chart, not the folder) -> the file's path
    as the user knows it, ``charts/shop/templates/svc.yaml``."""
    head, _, rest = source.partition("/")
    if head == name and rest:
        return (chart / rest).as_posix()
    return source
