"""End-to-end tests against a real cluster (kind) running the real image.

They run only from ``scripts/e2e-kind.sh``, which creates the cluster, deploys an overlay
and sets ``EDGEWARDEN_E2E_KUBECONFIG`` (and ``EDGEWARDEN_E2E_MODE``: ``enforce`` for
deploy/overlays/kind, ``audit-only`` for deploy/overlays/audit-only). Anywhere else, e.g.
a plain ``pytest`` on a machine without Docker or kind, every test here is skipped with the
reason; nothing is ever simulated.
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

from .helpers import PRODUCTION, Cluster, Mode, NamespaceFactory

E2E_DIR = Path(__file__).parent
KUBECONFIG_ENV = "EDGEWARDEN_E2E_KUBECONFIG"
MODE_ENV = "EDGEWARDEN_E2E_MODE"
HOW = "run scripts/e2e-kind.sh (see docs/deploy.md)"


@functools.cache
def why_not_runnable() -> str | None:
    """The first missing piece, as a skip reason; None when a cluster is there to test."""
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: the end-to-end tests need a kind cluster; {HOW}"
    try:
        info = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info failed ({error}): no Docker daemon to run kind; {HOW}"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the Docker daemon is not reachable (docker info: {last}); {HOW}"
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if not kubeconfig:
        return f"{KUBECONFIG_ENV} is not set (the script sets it to its kind cluster); {HOW}"
    if not Path(kubeconfig).is_file():
        return f"{KUBECONFIG_ENV}={kubeconfig} does not exist; {HOW}"
    if os.environ.get(MODE_ENV, "enforce") not in ("enforce", "audit-only"):
        return f"{MODE_ENV} must be 'enforce' or 'audit-only', not {os.environ[MODE_ENV]!r}"
    try:
        Cluster.connect(kubeconfig).server_version()
    except Exception as error:  # any failure to reach the API server means: no cluster
        return f"the cluster in {kubeconfig} is not reachable ({error}); {HOW}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deployed(mode): the overlay this test needs deployed (enforce, audit-only)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if E2E_DIR in item.path.parents]
    if not ours:
        return
    reason = why_not_runnable()
    deployed = os.environ.get(MODE_ENV, "enforce")
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
            continue
        wanted = item.get_closest_marker("deployed")
        if wanted is not None and wanted.args[0] != deployed:
            item.add_marker(pytest.mark.skip(reason=(
                f"needs the {wanted.args[0]} overlay deployed, the cluster runs {deployed} "
                "(scripts/e2e-kind.sh runs both in turn)"
            )))


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return Cluster.connect(os.environ[KUBECONFIG_ENV])


@pytest.fixture(scope="session")
def mode() -> Mode:
    return "audit-only" if os.environ.get(MODE_ENV) == "audit-only" else "enforce"



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

    def make(labels: dict[str, str] | None = None) -> str:
        final = dict(labels if labels is not None else {"environment": "production"})
        name = f"e2e-{uuid.uuid4().hex[:10]}"
        cluster.core.create_namespace(
            {"metadata": {"name": name, "labels": {"environment": "production"}}}
        )
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
