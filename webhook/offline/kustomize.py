"""``check --kustomize DIR``: judge what a kustomize folder renders, as ``kubectl apply -k`` would.

Rendering is left to ``kubectl kustomize`` (the kustomize every kubectl carries) rather than
reimplemented: generators, patches, components and name hashes are kustomize's business.
kubectl is taken from PATH, else from where ``scripts/kube-binaries`` caches the one it
builds (``~/.cache/edgewarden/kube/current/kubectl``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from webhook.errors import ManifestError
from webhook.offline.folders import KUSTOMIZE_FILES
from webhook.offline.manifests import Manifest, parse_manifests

RENDER_TIMEOUT_SECONDS = 300


def cached_kubectl() -> Path:
    return Path.home() / ".cache" / "edgewarden" / "kube" / "current" / "kubectl"


def find_kubectl() -> str:
    """kubectl on PATH, else the cached build; a ManifestError saying what to do otherwise."""
    found = shutil.which("kubectl")
    if found:
        return found
    cached = cached_kubectl()
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    raise ManifestError(
        "--kustomize runs `kubectl kustomize DIR`, and there is no kubectl on PATH nor at "
        f"{cached}: install kubectl, or render the folder yourself and pipe it in: "
        "kustomize build DIR | edgewarden check -f -"
    )


def render_kustomization(folder: Path, kubectl: str | None = None) -> list[Manifest]:
    """The objects ``kubectl kustomize folder`` renders, in its output order."""
    if not folder.is_dir():
        raise ManifestError(f"--kustomize {folder}: no such folder")
    if not any((folder / name).is_file() for name in KUSTOMIZE_FILES):
        raise ManifestError(f"--kustomize {folder}: no kustomization.yaml in it")
    command = [kubectl or find_kubectl(), "kustomize", str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=RENDER_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ManifestError(f"--kustomize {folder}: could not run {command[0]}: {error}") from None
    if result.returncode != 0:
        detail = result.stderr.strip() or f"exit code {result.returncode}"
        raise ManifestError(f"kubectl kustomize {folder} failed: {detail}")
    # Lines then count in the rendered stream, which is no file a report could link to.
    return parse_manifests(result.stdout, f"<kustomize {folder}>")
