"""Reading Kubernetes manifests (files, folders, stdin) into located objects.

What ``kubectl apply -f`` accepts is what we accept: multi-document YAML (or JSON), empty
documents skipped, ``kind: List`` (and ``*List`` kinds such as ``ServiceList``) flattened into
their items. Every object keeps the file, the document index and the line it starts on, so a
report can point a reviewer (or GitHub code scanning) at the exact place.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from webhook.errors import ManifestError, file_line
from webhook.offline.progress import NO_PROGRESS, Progress
from webhook.policy.load.yamlsource import LocatedDocument, YamlSyntaxError, read_documents

STDIN = "-"
STDIN_NAME = "<stdin>"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def is_synthetic(file: str) -> bool:
    """True for a source that is no file (``<stdin>``, ``<kustomize DIR>``): no path to link."""
    return file.startswith("<")


@dataclass(frozen=True, slots=True)
class Location:
    """Where an object was read: file, 0-based document index, 1-based line."""

    file: str
    document: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        return file_line(self.file, self.line)


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object from the input and where it came from (None: a live cluster)."""

    obj: Mapping[str, Any]
    location: Location | None

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        namespace = (self.obj.get("metadata") or {}).get("namespace")
        return str(namespace) if namespace else None


def read_stdin(stdin: TextIO | None, progress: Progress = NO_PROGRESS) -> list[Manifest]:
    stream = stdin if stdin is not None else sys.stdin
    return parse_manifests(stream.read(), STDIN_NAME, progress)


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file or folder") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot be read: {error.strerror or error}") from None


def parse_manifests(text: str, file: str, progress: Progress = NO_PROGRESS) -> list[Manifest]:
    """The objects of one multi-document YAML text named ``file`` (for messages)."""
    return manifests_of(parse_documents(text, file, progress), file)


def parse_documents(
    text: str, file: str, progress: Progress = NO_PROGRESS
) -> list[LocatedDocument]:
    """The non-empty YAML documents of ``text``; a syntax error is a ManifestError."""
    documents: list[LocatedDocument] = []
    try:
        # Parsing is a third of a large audit: count documents as they come.
        for document in read_documents(text):
            documents.append(document)
            progress.advance()
        return documents
    except YamlSyntaxError as error:
        raise ManifestError(f"{file_line(file, error.line)}: {error}") from None


def is_kubernetes_object(data: object) -> bool:
    """An API object: ``apiVersion``, ``kind`` and ``metadata`` (or a ``List`` of objects).

    Tool configurations borrow apiVersion and kind but have no metadata: a
    ``Kustomization``, kind's ``Cluster``, a kubeconfig's ``Config``."""
    if not isinstance(data, dict) or not data.get("apiVersion") or not data.get("kind"):
        return False
    return isinstance(data.get("metadata"), dict) or _is_list(data)


def manifests_of(documents: Iterable[LocatedDocument], file: str) -> list[Manifest]:
    """The objects of parsed documents; anything that is not an object is a ManifestError."""
    manifests: list[Manifest] = []
    for index, document in enumerate(documents):
        data = document.data
        where = file_line(file, document.line)
        if not isinstance(data, dict):
            raise ManifestError(
                f"{where}: document {index} is a {_type_name(data)}, not a Kubernetes object"
            )
        if _is_list(data):
            items = data.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{where}: {data.get('kind')}.items must be a list")
            for position, item in enumerate(items):
                line = document.line_of(("items", position))
                manifests.append(_checked(item, Location(file, index, line)))
        else:
            manifests.append(_checked(data, Location(file, index, document.line)))
    return manifests


def _is_list(data: Mapping[str, Any]) -> bool:
    kind = str(data.get("kind") or "")
    return kind.endswith("List") and "items" in data


def _checked(obj: Any, location: Location) -> Manifest:
    if not isinstance(obj, dict):
        raise ManifestError(f"{location}: list item is a {_type_name(obj)}, not an object")
    missing = [field for field in ("apiVersion", "kind") if not obj.get(field)]
    if missing:
        raise ManifestError(f"{location}: object has no {' and no '.join(missing)}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not (metadata.get("name") or metadata.get("generateName")):
        raise ManifestError(f"{location}: {obj['kind']} has no metadata.name")
    return Manifest(obj=obj, location=location)


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
