"""What a list of changed files means to judge: the pre-commit hook's input.

pre-commit hands a hook the names of the files a commit changes, whatever they are. Few of
them are manifests to judge as they stand:

* a file inside a Helm chart (the outermost folder holding a ``Chart.yaml``: a subchart is
  deployed by its parent) stands for the chart, judged as ``helm template`` renders it;
  a library chart renders nothing and is skipped;
* a file a kustomization uses (its ``kustomization.yaml``, a resource, a patch, a component,
  a generator's file) stands for every kustomization that is built, directly or through
  others, from it: the roots, those no other kustomization uses (the overlays), judged as
  ``kubectl kustomize`` renders them. A patch alone is no object; a base alone lacks what
  its overlays add;
* a file under a policies folder is a policy, a suite or a fixture: ``validate`` and
  ``test`` judge those;
* any other YAML or JSON file is a manifest when a document of it is a Kubernetes object
  (``apiVersion``, ``kind`` and ``metadata``), and skipped with a note otherwise
  (``values.yaml`` outside a chart, CI configurations, compose files);
* YAML in hidden folders and files (``.github``, ``.gitlab-ci.yml``) is skipped with a note;
  files that are not YAML or JSON are no manifests (silently).

Paths are read relative to the current folder (pre-commit runs hooks at the repository's
root); the repository is walked from there to find the kustomizations and what uses what
(hidden folders, ``node_modules`` and ``vendor`` aside). A kustomization that does not
parse uses nothing as far as this can tell: changing it renders it (and kubectl reports the
error), changing anything else is not held up by it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webhook.errors import ManifestError
from webhook.offline.folders import KUSTOMIZE_FILES, Skipped
from webhook.offline.helm import HELM_CHART_FILE, is_library_chart
from webhook.offline.manifests import MANIFEST_SUFFIXES, is_kubernetes_object, read_file

# Fields of a kustomization that name files or folders it is built from.
_PATH_LISTS = ("resources", "bases", "components", "crds", "patchesStrategicMerge",
               "configurations", "generators", "transformers", "validators")
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator", "helmCharts")
# Folders of other tools' dependencies: large, and never a deployment's source.
_NEVER_WALKED = frozenset({"node_modules", "vendor", "__pycache__"})


@dataclass(slots=True)
class Plan:
    """What to judge for a set of changed files, and what is skipped and why."""

    manifests: list[Path] = field(default_factory=list)
    charts: list[Path] = field(default_factory=list)
    kustomizations: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.manifests or self.charts or self.kustomizations)


@dataclass(frozen=True, slots=True)
class Kustomization:
    folder: Path
    component: bool  # kind: Component: built only into others, never alone
    uses: frozenset[Path]  # resolved files and folders it is built from


def plan(changed: Iterable[str | Path], *, policy_roots: Iterable[str | Path] = (),
         root: Path | None = None) -> Plan:
    """Sort ``changed`` into manifests, charts and kustomizations to judge, and skips."""
    base = (root or Path.cwd()).resolve()
    policies = [_resolved(base, p) for p in policy_roots]
    kustomizations: dict[Path, Kustomization] | None = None  # walked on first need
    result = Plan()
    charts: dict[Path, None] = {}
    roots: dict[Path, None] = {}
    for raw in dict.fromkeys(str(c) for c in changed):
        path = _resolved(base, raw)
        shown = raw
        if any(part.startswith(".") and part not in {".", ".."} for part in Path(raw).parts):
            # .github/, .gitlab-ci.yml, .pre-commit-config.yaml: tools' settings.
            if path.suffix in MANIFEST_SUFFIXES:
                result.skipped.append(Skipped(shown, "hidden: a tool's or CI's configuration"))
            continue
        if any(path == p or p in path.parents for p in policies):
            if path.suffix in MANIFEST_SUFFIXES:
                result.skipped.append(Skipped(shown, "a policy file, suite or fixture "
                                                     "(edgewarden validate and test judge it)"))
            continue
        chart = _outermost_chart(path, base)
        if chart is not None:
            charts.setdefault(chart, None)
            continue
        if kustomizations is None:
            kustomizations = find_kustomizations(base)
        users = _roots_using(path, kustomizations)
        if users:
            roots.update(dict.fromkeys(users))
            continue
        if path.suffix not in MANIFEST_SUFFIXES or not path.is_file():
            continue  # deleted, or no YAML: nothing to judge, nothing worth a note
        if _holds_an_object(path):
            result.manifests.append(Path(raw))
        else:
            result.skipped.append(Skipped(shown, "no Kubernetes object in it (no document has "
                                                 "apiVersion, kind and metadata)"))
    for chart in charts:
        if is_library_chart(chart):
            result.skipped.append(Skipped(_shown(chart, base), "a library chart: it renders "
                                                               "nothing on its own"))
        else:
            result.charts.append(_relative(chart, base))
    result.kustomizations = [_relative(folder, base) for folder in roots]
    return result


def find_kustomizations(root: Path) -> dict[Path, Kustomization]:
    """Every kustomization under ``root`` (hidden folders and Helm charts aside)."""
    found: dict[Path, Kustomization] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _NEVER_WALKED)
        here = Path(folder)
        if HELM_CHART_FILE in files:
            dirs[:] = []
            continue
        name = next((n for n in KUSTOMIZE_FILES if n in files), None)
        if name is not None:
            found[here] = _read_kustomization(here, here / name)
    return found


def _read_kustomization(folder: Path, file: Path) -> Kustomization:
    try:
        data = yaml.safe_load(read_file(file))
    except (yaml.YAMLError, ManifestError):
        # Uses nothing we can tell: a change to it renders it, and kubectl says what is wrong;
        # a commit elsewhere in the repository is not blocked by it.
        data = {}
    if not isinstance(data, dict):
        data = {}
    uses = {file}
    for reference in _references(data):
        if "://" in reference or reference.startswith(("github.com/", "git@")):
            continue  # a remote base: not in this repository
        uses.add((folder / reference).resolve())
    return Kustomization(folder, data.get("kind") == "Component", frozenset(uses))


def _references(data: dict[str, Any]) -> Iterator[str]:
    for key in _PATH_LISTS:
        for item in _list(data.get(key)):
            if isinstance(item, str):
                yield item
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"]
    for key in _PATH_ITEMS:
        for item in _list(data.get(key)):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"]
    for key in _GENERATORS:
        for item in _list(data.get(key)):
            if not isinstance(item, dict):
                continue
            for source in _list(item.get("files")) + _list(item.get("envs")):
                if isinstance(source, str):  # `key=path` names a file under another key
                    yield source.partition("=")[2] or source
            if isinstance(item.get("env"), str):
                yield item["env"]


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _roots_using(path: Path, kustomizations: dict[Path, Kustomization]) -> list[Path]:
    """The kustomizations no other uses that are built, through any chain, from ``path``."""
    direct = [k.folder for k in kustomizations.values()
              if path in k.uses or any(use in path.parents for use in k.uses
                                       if use.is_dir() and use not in kustomizations)]
    users: dict[Path, list[Path]] = {folder: [] for folder in kustomizations}
    for kustomization in kustomizations.values():
        for use in kustomization.uses:
            if use in kustomizations:
                users[use].append(kustomization.folder)
    roots: dict[Path, None] = {}
    seen: set[Path] = set()
    pending = list(direct)
    while pending:
        folder = pending.pop()
        if folder in seen:
            continue
        seen.add(folder)
        if users[folder]:
            pending.extend(users[folder])
        elif not kustomizations[folder].component:
            roots.setdefault(folder, None)
    return sorted(roots)


def _outermost_chart(path: Path, root: Path) -> Path | None:
    found = None
    for folder in [path, *path.parents] if path.is_dir() else path.parents:
        if folder != root and root not in folder.parents:
            break
        if (folder / HELM_CHART_FILE).is_file():
            found = folder
    return found


def _holds_an_object(path: Path) -> bool:
    """A document of ``path`` is a Kubernetes object; a YAML error is the file's error."""
    text = read_file(path)
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return True  # judged as a manifest: check reports the syntax error with its line
    return any(is_kubernetes_object(document) for document in documents)


def _resolved(base: Path, path: str | Path) -> Path:
    return (base / path).resolve()


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:
        return path


def _shown(path: Path, base: Path) -> str:
    return _relative(path, base).as_posix()
