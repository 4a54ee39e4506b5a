"""What ``check -f`` reads: files, stdin, and the Kubernetes manifests inside a folder.

A repository holds more than manifests: a ``kustomization.yaml``, a Helm chart (its
``Chart.yaml``, ``values.yaml`` and Go templates that are not YAML until rendered), CI
settings, READMEs. ``check -f repo/`` judges the manifests among them and skips the rest
with a note saying why, rather than stopping at the first file that is not an object. The
rules, in a folder only (a file named on the command line is always read, strictly):

* hidden files and folders (``.git``, ``.github``) are not read, silently;
* a folder holding a ``Chart.yaml`` is a Helm chart: skipped whole (render it first);
* ``kustomization.yaml`` is skipped (``--kustomize DIR`` judges what the folder renders);
* files that are not ``.yaml``, ``.yml`` or ``.json`` are skipped;
* a YAML file none of whose documents is a Kubernetes object (``apiVersion``, ``kind``
  and ``metadata``), such as a ``values.yaml``, a compose file or a tool's configuration
  (kind's ``Cluster``, a kubeconfig), is skipped. A file with at least
  one object is a manifest file, so a broken document in it is still an error, as is a
  YAML syntax error anywhere: a manifest that does not parse must not pass a check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from webhook.errors import ManifestError
from webhook.offline.manifests import (
    MANIFEST_SUFFIXES,
    STDIN,
    Manifest,
    is_kubernetes_object,
    manifests_of,
    parse_documents,
    parse_manifests,
    read_file,
    read_stdin,
)
from webhook.offline.progress import NO_PROGRESS, Progress

KUSTOMIZE_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
HELM_CHART_FILE = "Chart.yaml"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or folder of the input that holds no Kubernetes object to judge, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(slots=True)
class Inputs:
    manifests: list[Manifest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_inputs(
    paths: Iterable[str | Path], stdin: TextIO | None = None, progress: Progress = NO_PROGRESS
) -> Inputs:
    """Every object under ``paths`` in order (``-`` is ``stdin``), and what was skipped."""
    inputs = Inputs()
    for raw in paths:
        progress.begin(f"reading {raw}")
        if str(raw) == STDIN:
            inputs.manifests.extend(read_stdin(stdin, progress))
            continue
        path = Path(raw)
        if path.is_dir():
            _read_folder(path, inputs, progress)
        else:
            inputs.manifests.extend(parse_manifests(read_file(path), str(path), progress))
    return inputs


def load_manifests(
    paths: Iterable[str | Path], stdin: TextIO | None = None, progress: Progress = NO_PROGRESS
) -> list[Manifest]:
    """Every object under ``paths`` in order; ``-`` reads ``stdin``. Raises ManifestError.

    Folders are read as :func:`read_inputs` reads them, files that are not Kubernetes
    objects skipped; use that function to learn what was skipped."""
    return read_inputs(paths, stdin, progress).manifests


def _read_folder(folder: Path, inputs: Inputs, progress: Progress) -> None:
    candidates: list[Path] = []
    others: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if HELM_CHART_FILE in files:
            dirs[:] = []
            inputs.skipped.append(Skipped(
                str(here),
                "a Helm chart; judge what it renders: helm template NAME "
                f"{here} | edgewarden check -f -",
            ))
            continue
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            if name in KUSTOMIZE_FILES:
                inputs.skipped.append(Skipped(
                    str(path), f"a kustomize file; judge what it renders: --kustomize {here}"
                ))
            elif path.suffix in MANIFEST_SUFFIXES:
                candidates.append(path)
            else:
                others.append(path)
    if not candidates and not inputs.skipped:
        raise ManifestError(f"{folder}: folder holds no .yaml, .yml or .json files")
    # Notes in path order, as the objects are read: easier to scan than the walk's order.
    inputs.skipped.sort(key=lambda skipped: Path(skipped.path))
    if others:
        names = ", ".join(str(p) for p in sorted(others)[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        inputs.skipped.append(Skipped(
            str(folder), f"{len(others)} file(s) not YAML or JSON: {names}{more}"
        ))
    # Sorted as whole paths, so the order (which decides what a limit counts first) does not
    # depend on how the file system lists a folder.
    for path in sorted(candidates):
        documents = parse_documents(read_file(path), str(path), progress)
        if not any(is_kubernetes_object(document.data) for document in documents):
            inputs.skipped.append(Skipped(str(path), "no Kubernetes object in it (no document has "
                                                     "apiVersion, kind and metadata)"))
            continue
        inputs.manifests.extend(manifests_of(documents, str(path)))
