"""Issue 23's "done when" for the image: it is at most 200 MB, holds only what runs, and,
started the way the Deployment starts it, answers the real API server as its webhook.

The image is the one ``scripts/image`` built from this tree (see images.py); ``serve``
runs in it with ``buildah run --isolation chroot --network host``, as the ServiceAccount
edgewarden/edgewarden with deploy/base's RBAC, its serving certificate signed by a CA this
test makes, the API server calling it at https://127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import pki
from tests.kube.net import free_ports
from tests.kube.processes import ManagedProcess
from tests.kube.wait import crds_established
from tests.support import eventually
from tests.support.compiled import shipped_module_names
from webhook import __version__

from .images import REPO, Image

MAX_IMAGE_BYTES = 200 * 1000 * 1000
NAMESPACE = "edgewarden"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:edgewarden"


# -- what is in the image ------------------------------------------------------------------


def test_image_reports_the_package_version(image: Image) -> None:
    with image.container() as container:
        result = container.run("edgewarden", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["edgewarden", __version__]


def test_image_is_at_most_200_mb(image: Image) -> None:
    size = int(image.inspect("{{.Size}}"))
    assert 0 < size <= MAX_IMAGE_BYTES, f"{size / 1e6:.1f} MB"


def test_image_carries_its_version_and_runs_as_non_root(image: Image) -> None:
    labels = json.loads(image.inspect("{{json .Labels}}"))
    assert labels["org.opencontainers.image.version"] == __version__
    assert image.reference.split(":")[-1].startswith(f"{__version__}-")
    assert image.inspect("{{.User}}") == "65532:65532"
    with image.container() as container:
        who = container.run("python3", "-c", "import os, sys; "
                            "print(os.getuid(), os.getgid(), *sys.version_info[:2])")
    assert who.stdout.split() == ["65532", "65532", "3", "11"], who.stderr


def test_image_has_no_installer_and_no_build_tools(image: Image) -> None:
    """Nothing in the image can install or compile: no pip, setuptools or wheel in the
    venv or the system, no compiler, no package manager, no shell tools beyond sh."""
    # (Debian's python3 keeps a stub ensurepip; the wheels it would install are gone.)
    probe = ("import glob, importlib.util as u, shutil; "
             "print(sorted(m for m in ('pip', 'setuptools', 'wheel', 'kubernetes.aio')"
             " if u.find_spec(m.split('.')[0]) and u.find_spec(m))"
             " + glob.glob('/usr/share/python-wheels/*')); "
             "print(sorted(t for t in ('pip', 'pip3', 'gcc', 'cc', 'strip', 'apt', 'apt-get', "
             "'dpkg', 'perl', 'bash', 'tar') if shutil.which(t)))")
    with image.container() as container:
        result = container.run("python3", "-c", probe)
        imports = container.run("python3", "-c", "import webhook.cli, kubernetes.client, "
                                "uvicorn, uvloop, cryptography, fastapi; print('ok')")
    assert result.returncode == 0, result.stderr
    modules, tools = result.stdout.splitlines()
    assert modules == "[]", modules
    assert tools == "[]", tools
    assert imports.stdout.strip() == "ok", imports.stderr


def test_image_runs_the_admission_path_compiled_by_mypyc(image: Image) -> None:
    modules = shipped_module_names()
    assert modules
    probe = ("import importlib, sys; "
             f"print(*(importlib.import_module(m).__file__ for m in {modules!r}), sep='\\n')")
    with image.container() as container:
        found = container.run("python3", "-c", probe)
    assert found.returncode == 0, found.stderr
    files = found.stdout.split()
    assert len(files) == len(modules)
    assert all(f.endswith(".so") and f.startswith("/opt/venv/") for f in files), files


def normalized(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_holds_the_runtime_dependencies_and_none_of_the_test_extras(
        image: Image) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {normalized(r) for r in project["dependencies"]}
    test_only = {normalized(r) for r in project["optional-dependencies"]["test"]} - runtime
    assert runtime and test_only
    with image.container() as container:
        listed = container.run("python3", "-c", "import importlib.metadata as m; "
                               "print(*(d.metadata['Name'] for d in m.distributions()))")
    assert listed.returncode == 0, listed.stderr
    installed = {normalized(name) for name in listed.stdout.split()}
    assert "edgewarden" in installed
    assert runtime <= installed, sorted(runtime - installed)
    assert not installed & test_only, sorted(installed & test_only)


# -- the image as the API server's webhook ------------------------------------------------


@pytest.fixture(scope="module")
def plane(kube_control_plane: Any) -> Any:
    """The control plane with the CRDs, edgewarden's namespace, ServiceAccount and RBAC."""
    kubectl = kube_control_plane.kubectl
    kubectl("apply", "-f", str(REPO / "deploy" / "crds" / "edgewarden.dev_policies.yaml"),
            "-f", str(REPO / "deploy" / "crds" / "edgewarden.dev_policyexceptions.yaml"))
    crds_established(kubectl, "crd/policies.edgewarden.dev", "crd/policyexceptions.edgewarden.dev")
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        kubectl("apply", "-f", str(REPO / "deploy" / "base" / name))
    return kube_control_plane


def readable(folder: Path) -> Path:
    """The image's user (65532) reads what is mounted: pytest's folders are root's, 0700."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


@pytest.fixture(scope="module")
def served(image: Image, plane: Any, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[int, bytes]]:
    """``edgewarden serve`` from the image with the Deployment's arguments; yields its
    port and the CA of its serving certificate once /readyz answers 200."""
    certs = tmp_path_factory.mktemp("image-certs")
    ca = pki.new_ca("edgewarden-image-test-ca")
    ca_file, _ = ca.write(certs, "ca")
    (certs / "ca.key").unlink()  # the server needs the CA's certificate at most
    pki.serving_certificate(ca).write(certs, "tls")
    kube = tmp_path_factory.mktemp("image-kube")
    token = plane.kubectl("create", "token", "edgewarden", "-n", NAMESPACE,
                          "--duration=2h").stdout.strip()
    (kube / "config").write_text(
        plane.kubeconfig_for(SERVICE_ACCOUNT, name="edgewarden-image", token=token).read_text())
    port, probe_port = free_ports(2)
    with image.container() as container:
        # deploy/base/deployment.yaml's arguments; only the addresses and the certificate
        # flags (an overlay's part) differ.
        argv = container.argv(
            ["edgewarden", "serve", "--policies", "/etc/edgewarden/policies",
             "--host", "127.0.0.1", "--port", str(port), "--manage-quotas",
             "--probe-port", str(probe_port),
             "--tls-cert", "/etc/edgewarden/certs/tls.crt",
             "--tls-key", "/etc/edgewarden/certs/tls.key"],
            volumes=[(readable(certs), "/etc/edgewarden/certs"),
                     (readable(kube), "/etc/edgewarden/kube")],
            env={"KUBECONFIG": "/etc/edgewarden/kube/config"})
        server = ManagedProcess("edgewarden (image)", argv,
                                tmp_path_factory.mktemp("image-logs") / "serve.log")
        server.start()
        try:
            def ready() -> bool:
                server.check_alive()
                try:
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{probe_port}/readyz", timeout=2) as answer:
                        return bool(answer.status == 200)
                except OSError:
                    return False

            eventually(ready, timeout=120, interval=0.5, what="/readyz of serve in the image")
            yield port, ca_file.read_bytes()
        finally:
            server.stop()


@pytest.fixture
def registered(plane: Any, served: tuple[int, bytes]) -> Iterator[str]:
    """A fresh production namespace whose Services the API server sends to the image."""
    port, ca = served
    namespace = f"t-image-{uuid.uuid4().hex[:8]}"
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("label", "namespace", namespace, "environment=production")
    name = f"edgewarden-image-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "validate.edgewarden.dev",
            "clientConfig": {"url": f"https://127.0.0.1:{port}/validate",
                             "caBundle": base64.b64encode(ca).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
                       "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 10,
        }],
    }
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        yield namespace
    finally:
        plane.kubectl("delete", "validatingwebhookconfiguration", name, check=False)
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def service(name: str, namespace: str, kind: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": kind, "selector": {"app": name},
                 "ports": [{"port": 80, "targetPort": 8080}]},
    })


def test_the_api_server_refuses_a_production_nodeport_through_the_image(
        plane: Any, registered: str) -> None:
    refused = plane.kubectl("create", "-f", "-", input=service("web", registered, "NodePort"),
                            check=False)
    assert refused.returncode != 0
    assert 'admission webhook "validate.edgewarden.dev" denied the request' in refused.stderr
    assert "deny-nodeport-in-production" in refused.stderr
    assert (f"Service web is type NodePort, which opens a port on every node and is not "
            f"allowed in production namespace {registered}") in refused.stderr
    absent = plane.kubectl("get", "service", "web", "-n", registered, check=False)
    assert absent.returncode != 0 and "NotFound" in absent.stderr


def test_the_api_server_admits_a_clusterip_service_through_the_image(
        plane: Any, registered: str) -> None:
    created = plane.kubectl("create", "-f", "-", input=service("api", registered, "ClusterIP"))
    assert "service/api created" in created.stdout
    found = yaml.safe_load(plane.kubectl("get", "service", "api", "-n", registered,
                                         "-o", "yaml").stdout)
    assert found["spec"]["type"] == "ClusterIP"
