"""Checks shared by the kustomize tests (tests/deploy), the Helm chart tests (tests/helm) and
the monitoring tests (tests/monitoring): schema validation of rendered objects, parsing
container args with the real CLI, and the Go tools scripts/kube-binaries builds."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

Manifest = dict[str, Any]

# Where scripts/kube-binaries (helm, promtool, ...) and scripts/monitoring-crds put things.
KUBE_CACHE = Path(os.environ.get("EDGEWARDEN_KUBE_CACHE")
                  or Path.home() / ".cache" / "edgewarden" / "kube")
CURRENT = KUBE_CACHE / "current"
PROMETHEUS_OPERATOR_CRDS = CURRENT / "prometheus-operator-crds"
# kind -> the CRD file of prometheus-operator that defines it.
MONITORING_CRDS = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}


def cached_tool(name: str) -> Path:
    """A Go tool built by scripts/kube-binaries; the test skips (saying how) without it."""
    path = CURRENT / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"{name} is not built: run scripts/kube-binaries (expected {path})")
    return path


# -- schemas ------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused, as `kubectl --validate=strict` does:
    every object that lists its properties and does not preserve unknown fields gets
    additionalProperties false."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(kind: str, version: str) -> jsonschema.protocols.Validator:
    directory = PROMETHEUS_OPERATOR_CRDS
    if not directory.is_dir():
        pytest.skip(f"the prometheus-operator CRDs are not fetched: run scripts/monitoring-crds "
                    f"(expected {directory})")
    crd = yaml.safe_load((directory / MONITORING_CRDS[kind]).read_text())
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"{kind} {version} is not served by the CRD (has {list(served)})"
    schema = _strict(copy.deepcopy(served[version]["schema"]["openAPIV3Schema"]))
    # Kubernetes checks metadata itself; the CRD only says "object".
    schema["properties"]["metadata"] = {"type": "object"}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def crd_problems(obj: Manifest) -> list[str]:
    """Problems of a prometheus-operator object against its CRD's schema (strict)."""
    group_version = obj["apiVersion"]
    kind = obj["kind"]
    where = f"{kind}/{obj['metadata']['name']}"
    if kind not in MONITORING_CRDS:
        return [f"{where}: no CRD known for {group_version} {kind}"]
    version = group_version.split("/", 1)[1]
    validator = _crd_validator(kind, version)
    return [
        f"{where}: {'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    ]


def schema_problems(objects: list[Manifest], version: str) -> list[str]:
    """Every object against the Kubernetes schemas of ``version`` (strict: unknown fields
    are problems), prometheus-operator objects against their CRDs. cert-manager objects
    have no schema here: the tests check their fields by hand."""
    problems = []
    for obj in objects:
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        if group == "cert-manager.io":
            continue
        if group == "monitoring.coreos.com":
            problems += crd_problems(obj)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(error.message)
    return problems


# -- the edgewarden command line ----------------------------------------------------------


def _command(args: list[str]) -> tuple[Any, list[str], list[str]]:
    """The click command ``args`` names, the path to it and the rest of the args."""
    cli = pytest.importorskip("webhook.cli")
    typer = pytest.importorskip("typer")
    command: Any = typer.main.get_command(cli.app)
    path = ["edgewarden"]
    rest = list(args)
    while hasattr(command, "get_command"):  # a group: descend into the sub-command
        name, rest = rest[0], rest[1:]
        context = command.make_context(" ".join(path), [name], resilient_parsing=True)
        sub = command.get_command(context, name)
        assert sub is not None, f"`{' '.join([*path, name])}`: no such command"
        command, path = sub, [*path, name]
    return command, path, rest


def parse_with_the_real_cli(args: list[str]) -> dict[str, Any]:
    """Parse a container's args with the edgewarden command itself (nothing runs)."""
    command, path, rest = _command(args)
    return dict(command.make_context(" ".join(path), rest).params)

