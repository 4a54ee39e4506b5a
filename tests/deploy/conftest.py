"""Shared helpers: every overlay built with `kubectl kustomize`, exactly as a user would."""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = REPO / "deploy" / "overlays"
OVERLAYS = sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())

Manifest = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: it builds the overlays (kubectl kustomize)")
    return path


@functools.cache
def _build(directory: str) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", directory],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    objects = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    assert objects, f"kubectl kustomize {directory} rendered no object"
    return objects


def rendered(overlay: str) -> list[Manifest]:
    """The objects of deploy/overlays/<overlay> (built once per session; copies)."""
    return copy.deepcopy(list(_build(str(OVERLAYS_DIR / overlay))))


STATIC_WEBHOOKS = REPO / "deploy" / "components" / "static-webhooks"


@functools.cache
def _build_static(overlay: str) -> tuple[Manifest, ...]:
    """``overlay`` with deploy/components/static-webhooks, as a GitOps user's kustomization
    would write it (kustomize takes only relative paths: the folder is a temporary one);
    an overlay that lists the component itself (kind) as it is."""
    own = _build(str(OVERLAYS_DIR / overlay))
    if any(o["kind"] == "ValidatingWebhookConfiguration" for o in own):
        return own
    with tempfile.TemporaryDirectory() as folder:
        base = os.path.relpath(OVERLAYS_DIR / overlay, folder)
        component = os.path.relpath(STATIC_WEBHOOKS, folder)
        (Path(folder) / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [base], "components": [component]}))
        return _build(folder)


def rendered_static(overlay: str) -> list[Manifest]:
    """The objects of deploy/overlays/<overlay> with static webhook configurations."""
    return copy.deepcopy(list(_build_static(overlay)))


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)
