"""End-to-end tests: a real kube-apiserver calls the real webhook. One suite, two backends,
chosen by ``EDGEWARDEN_E2E_BACKEND``:

* ``apiserver`` (the default, what ``scripts/test`` and CI run): etcd, kube-apiserver and
  kube-controller-manager built by ``scripts/kube-binaries`` run as processes on 127.0.0.1
  (tests/kube), and ``edgewarden serve`` runs as a process registered by URL
  (``local.py``). Without the binaries these tests skip, or fail when ``CI=true``.
* ``kind``: ``scripts/e2e-kind.sh`` creates a kind cluster, deploys the image with an
  overlay and sets ``EDGEWARDEN_E2E_KUBECONFIG`` and ``EDGEWARDEN_E2E_MODE`` (``enforce``
  for deploy/overlays/kind, ``audit-only`` for deploy/overlays/audit-only). Without Docker,
  kind or that cluster every test skips with the reason; nothing is ever simulated.

A test needing what only one backend has (restarting the API server, the API server's
audit log, the server's command line) asks for the ``control_plane`` or ``local`` fixture,
which skips on the other backend.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.wait import crds_established

from .helpers import PRODUCTION, Cluster, NamespaceFactory
from .installation import Installation, Mode
from .kind import KUBECONFIG_ENV, MODE_ENV, KindInstallation
from .kubeplane import ControlPlane, cert_manager_crds, kube_control_plane  # noqa: F401  (registers the fixture)
from .local import LocalInstallation

E2E_DIR = Path(__file__).parent
BACKEND_ENV = "EDGEWARDEN_E2E_BACKEND"
BACKENDS = ("apiserver", "kind")
HOW_KIND = "run scripts/e2e-kind.sh (see docs/deploy.md)"


def backend() -> str:
    return os.environ.get(BACKEND_ENV, "apiserver")


@functools.cache
def why_kind_not_runnable() -> str | None:
    """The first missing piece, as a skip reason; None when a kind cluster is there."""
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: the kind backend needs a kind cluster; {HOW_KIND}"
    try:
        info = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info failed ({error}): no Docker daemon to run kind; {HOW_KIND}"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the Docker daemon is not reachable (docker info: {last}); {HOW_KIND}"
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if not kubeconfig:
        return f"{KUBECONFIG_ENV} is not set (the script sets it to its kind cluster); {HOW_KIND}"
    if not Path(kubeconfig).is_file():
        return f"{KUBECONFIG_ENV}={kubeconfig} does not exist; {HOW_KIND}"
    if os.environ.get(MODE_ENV, "enforce") not in ("enforce", "audit-only"):
        return f"{MODE_ENV} must be 'enforce' or 'audit-only', not {os.environ[MODE_ENV]!r}"
    try:
        Cluster.connect(KindInstallation.from_environment()).server_version()
    except Exception as error:  # any failure to reach the API server means: no cluster
        return f"the cluster in {kubeconfig} is not reachable ({error}); {HOW_KIND}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deployed(mode): the mode edgewarden must run in (enforce, audit-only)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if E2E_DIR in item.path.parents]
    if not ours:
        return
    reason = None
    if backend() not in BACKENDS:
        reason = f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, not {backend()!r}"
    elif backend() == "kind":
        reason = why_kind_not_runnable()
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def installation(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """edgewarden installed in the backend's cluster, for the session."""
    if backend() == "kind":
        yield KindInstallation.from_environment()
        return
    plane: ControlPlane = request.getfixturevalue("kube_control_plane")
    local = LocalInstallation(plane, tmp_path_factory.mktemp("edgewarden"))
    local.install()
    try:
        yield local
    finally:
        local.stop_webhook()


@pytest.fixture(autouse=True)
def mode(request: pytest.FixtureRequest, installation: Installation) -> Mode:
    """The mode this test runs edgewarden in (``@pytest.mark.deployed``, else enforce)."""
    marker = request.node.get_closest_marker("deployed")
    wanted: Mode = marker.args[0] if marker is not None else "enforce"
    installation.deploy(wanted)
    return wanted


@pytest.fixture(scope="session")
def cluster(installation: Installation) -> Cluster:
    return Cluster.connect(installation)


@pytest.fixture
def local(installation: Installation) -> LocalInstallation:
    """The local backend's installation (its server process, files and control plane)."""
    if not isinstance(installation, LocalInstallation):
        pytest.skip("needs the local control plane (EDGEWARDEN_E2E_BACKEND=apiserver): it "
                    "starts and stops the API server and edgewarden's own process")
    return installation


@pytest.fixture
def control_plane(local: LocalInstallation) -> ControlPlane:
    return local.plane


@pytest.fixture
def namespace(cluster: Cluster, mode: Mode) -> Iterator[NamespaceFactory]:
    """Make a fresh namespace that the webhook has already observed with its final labels.

    The webhook judges from its own watch cache, which learns of a new namespace a moment
    after the API server does. So each namespace starts labelled environment=production and
    we wait until the webhook treats it so (a NodePort dry-run is refused, or in audit-only
    mode recorded in the audit log); a namespace meant to be something else then gets its
    final labels, and we wait until the same dry-run goes through. Every wait is bounded.
    """
    created: list[str] = []

    def make(labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> str:
        final = dict(labels if labels is not None else {"environment": "production"})
        name = f"e2e-{uuid.uuid4().hex[:10]}"
        metadata = {"name": name, "labels": {"environment": "production"},
                    "annotations": annotations or {}}
        cluster.core.create_namespace({"metadata": metadata})
        created.append(name)
        cluster.wait_until_webhook_sees_production(name, mode)
        if final == {"environment": "production"}:
            return name
        if final.get("environment") in PRODUCTION:
            raise ValueError("a production namespace carries only environment=production here")
        patch: dict[str, str | None] = {"environment": None, **final}
        cluster.core.patch_namespace(  # a JSON merge patch: null removes the label
            name, {"metadata": {"labels": patch}}, _content_type="application/merge-patch+json"
        )
        cluster.wait_until_webhook_sees_non_production(name, mode)
        return name

    yield make
    for name in created:
        cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def cert_manager_crds_installed(installation: Installation) -> None:
    """cert-manager's CRDs, from the release pinned in tests/kube/cert-manager (what the
    cert-manager overlay and the chart's cert-manager value sets need)."""
    crds = cert_manager_crds()
    if crds is None:
        pytest.skip("cert-manager's CRDs are not in the tools cache: run scripts/kube-binaries")
    # (kubectl reads a folder only when given its real path, not a link to it)
    installation.kubectl("apply", "--server-side", "-f", str(crds.resolve()))
    crds_established(installation.kubectl, "crd/certificates.cert-manager.io",
                     "crd/issuers.cert-manager.io")
