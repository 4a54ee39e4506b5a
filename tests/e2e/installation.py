"""What the end-to-end tests need from "edgewarden installed in a cluster", whichever the
backend: the local control plane (``local.py``: etcd + kube-apiserver + controller manager
as processes, ``edgewarden serve`` as a process registered by URL) or a kind cluster
(``kind.py``: the image deployed with a kustomize overlay by scripts/e2e-kind.sh).

A test asks for what it uses; a backend that cannot give it skips that test with the
reason (e.g. kind has no API server to restart from here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

Mode = Literal["enforce", "audit-only"]
FailurePolicy = Literal["Fail", "Ignore"]
REPO = Path(__file__).resolve().parents[2]
EDGEWARDEN = str(Path(sys.executable).with_name("edgewarden"))
VALIDATING = "edgewarden-validating"
MUTATING = "edgewarden-mutating"
WEBHOOK_NAMESPACE = "edgewarden"


class Installation(Protocol):
    backend: str  # "apiserver" or "kind"
    kubeconfig: Path  # an administrator's
    replicas: int  # webhook replicas answering (each keeps its own reservations)

    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]: ...

    def deploy(self, mode: Mode) -> None:
        """Make ``mode`` the one deployed (or skip the test when the backend cannot)."""
        ...

    @property
    def mode(self) -> Mode: ...

    def webhook_records(self, name: str | None = None) -> list[dict[str, Any]]:
        """The webhook's audit log (JSON lines), optionally only those for object ``name``."""
        ...

    def webhook_metrics(self) -> list[str]:
        """The Prometheus text of ``/metrics`` of every serving replica."""
        ...

    def stop_webhook(self) -> None:
        """No replica answers any more (the configurations stay registered)."""
        ...

    def start_webhook(self) -> None:
        """Replicas answer again, with their cache synced."""
        ...


def edgewarden(installation: Installation, *args: str) -> str:
    """Run an ``edgewarden`` command against the cluster (as administrator); its stdout."""
    env = {**os.environ, "KUBECONFIG": str(installation.kubeconfig)}
    result = subprocess.run([EDGEWARDEN, *args], capture_output=True, text=True, timeout=120,
                            env=env, cwd=REPO, check=False)
    if result.returncode != 0:
        raise AssertionError(f"edgewarden {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stderr}{result.stdout}")
    return result.stdout


def failure_policies(installation: Installation) -> dict[str, str]:
    """The failurePolicy of each of the two configurations, as the API server has them."""
    policies = {}
    for kind, name in (("validatingwebhookconfiguration", VALIDATING),
                       ("mutatingwebhookconfiguration", MUTATING)):
        out = installation.kubectl("get", kind, name, "-o",
                                   "jsonpath={.webhooks[0].failurePolicy}").stdout
        policies[name] = out.strip()
    return policies


def set_failure_policy(installation: Installation, name: str, value: str) -> None:
    kind = ("validatingwebhookconfiguration" if name == VALIDATING
            else "mutatingwebhookconfiguration")
    installation.kubectl("patch", kind, name, "--type=json", "-p",
                         f'[{{"op":"replace","path":"/webhooks/0/failurePolicy",'
                         f'"value":"{value}"}}]')


@contextmanager
def webhook_down(installation: Installation) -> Iterator[None]:
    """The webhook stopped for the block, started again (and synced) after it."""
    installation.stop_webhook()
    try:
        yield
    finally:
        installation.start_webhook()


def metric_sum(texts: list[str], name: str, **labels: str) -> float:
    """Sum of a Prometheus sample over replicas (and over unnamed labels)."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$")
    for text in texts:
        for line in text.splitlines():
            match = pattern.match(line)
            if match is None:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total
