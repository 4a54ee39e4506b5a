"""edgewarden in a kind cluster, deployed by scripts/e2e-kind.sh (the real image, a
kustomize overlay, two replicas behind the Service): the tests drive it with kubectl.

The script deploys one overlay at a time and says which in ``EDGEWARDEN_E2E_MODE``; a test
that needs the other mode skips (the script runs the suite once per overlay)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .installation import WEBHOOK_NAMESPACE, Mode
from .kubeplane import until

KUBECONFIG_ENV = "EDGEWARDEN_E2E_KUBECONFIG"
MODE_ENV = "EDGEWARDEN_E2E_MODE"
WEBHOOK_PODS = "app.kubernetes.io/name=edgewarden,app.kubernetes.io/component=webhook"
REPLICAS = 2
TIMEOUT = "180s"
STOP_SECONDS = 180.0


class KindInstallation:
    backend = "kind"
    replicas = REPLICAS  # deploy/base/deployment.yaml

    def __init__(self, kubeconfig: Path, mode: Mode) -> None:
        self.kubeconfig = kubeconfig
        self._mode = mode
        self._kubectl = shutil.which("kubectl") or "kubectl"

    @classmethod
    def from_environment(cls) -> KindInstallation:
        mode: Mode = "audit-only" if os.environ.get(MODE_ENV) == "audit-only" else "enforce"
        return cls(Path(os.environ[KUBECONFIG_ENV]), mode)

    @property
    def mode(self) -> Mode:
        return self._mode

    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self._kubectl, "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True,
                                timeout=240, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stderr}{result.stdout}")
        return result

    def deploy(self, mode: Mode) -> None:
        if mode != self._mode:
            pytest.skip(f"needs the {mode} overlay deployed, the cluster runs {self._mode} "
                        "(scripts/e2e-kind.sh runs both in turn)")

    def _pods(self) -> list[str]:
        out = self.kubectl("get", "pods", "-n", WEBHOOK_NAMESPACE, "-l", WEBHOOK_PODS,
                           "--field-selector=status.phase=Running", "-o", "name").stdout
        return [line.split("/", 1)[1] for line in out.split()]

    def webhook_records(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON lines of the webhook pods' audit log (stdout)."""
        records: list[dict[str, Any]] = []
        for pod in self._pods():
            log = self.kubectl("logs", "-n", WEBHOOK_NAMESPACE, pod, "-c", "edgewarden",
                               check=False).stdout
            for line in log.splitlines():
                if not line.startswith("{"):
                    continue  # the server's own log lines (stderr) are interleaved
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if (isinstance(record, dict) and "policy" in record
                        and (name is None or record.get("name") == name)):
                    records.append(record)
        return records

    def webhook_metrics(self) -> list[str]:
        """Each replica's /metrics, through the API server's proxy to the pod."""
        return [
            self.kubectl("get", "--raw", f"/api/v1/namespaces/{WEBHOOK_NAMESPACE}/pods/"
                         f"https:{pod}:8443/proxy/metrics").stdout
            for pod in self._pods()
        ]

    def stop_webhook(self) -> None:
        self.kubectl("scale", "deployment/edgewarden", "-n", WEBHOOK_NAMESPACE, "--replicas=0")

        def no_pods_left() -> bool:
            return not self.kubectl("get", "pods", "-n", WEBHOOK_NAMESPACE, "-l", WEBHOOK_PODS,
                                    "-o", "name").stdout.strip()

        until(no_pods_left, "the webhook's pods to be gone", STOP_SECONDS, interval=1.0)

    def start_webhook(self) -> None:
        self.kubectl("scale", "deployment/edgewarden", "-n", WEBHOOK_NAMESPACE,
                     f"--replicas={REPLICAS}")
        self.kubectl("rollout", "status", "deployment/edgewarden", "-n", WEBHOOK_NAMESPACE,
                     f"--timeout={TIMEOUT}")
