"""edgewarden on the local control plane: ``edgewarden serve`` as a process on 127.0.0.1,
registered with the configurations ``edgewarden webhook-config --url`` renders and the
caBundle of ``edgewarden certs generate``.

It runs as the ServiceAccount ``edgewarden/edgewarden`` with the RBAC the manifests ship
(deploy/base/rbac.yaml, deploy/components/self-managed-certs/rbac.yaml) and a token from
the TokenRequest API, so a permission the server lacks fails here as in a cluster. Only
the Deployment, Service and Pod are missing: there are no nodes to run them.

The two modes follow the overlays: ``enforce`` fails closed (deploy/overlays/production),
``audit-only`` is ``serve --dry-run`` failing open (deploy/overlays/audit-only).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.kube.wait import crds_established

from .installation import EDGEWARDEN, REPO, WEBHOOK_NAMESPACE, Mode
from .kubeplane import ControlPlane, ManagedProcess, free_port, gateway_api_crds, until

SHIPPED_RBAC = (
    REPO / "deploy/base/namespace.yaml",
    REPO / "deploy/base/serviceaccount.yaml",
    REPO / "deploy/base/rbac.yaml",
    REPO / "deploy/components/self-managed-certs/rbac.yaml",
)
CLAIM_CRD = REPO / "deploy/crds/edgewarden.dev_claims.yaml"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{WEBHOOK_NAMESPACE}:edgewarden"
# A namespace in which a NodePort is refused once the webhook really answers.
PROBE_NAMESPACE = "e2e-readiness-probe"
READY_TIMEOUT = 60.0
FAILURE_POLICIES: dict[Mode, str] = {"enforce": "Fail", "audit-only": "Ignore"}


def install_gateway_api(plane: ControlPlane) -> None:
    """The standard-channel Gateway API CRDs, established before edgewarden starts (so its
    cache lists HTTPRoutes from the first LIST on)."""
    crds = gateway_api_crds()
    if not crds:
        raise AssertionError("the Gateway API CRDs are missing: run scripts/kube-binaries")
    plane.kubectl("apply", "--server-side", *[a for p in crds for a in ("-f", str(p))])
    crds_established(plane.kubectl, "crd/gateways.gateway.networking.k8s.io",
                     "crd/httproutes.gateway.networking.k8s.io")


class LocalInstallation:
    backend = "apiserver"
    replicas = 1

    def __init__(self, plane: ControlPlane, workdir: Path) -> None:
        self.plane = plane
        self.kubeconfig = plane.kubeconfig
        self.workdir = workdir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.tls_dir = workdir / "tls"
        self.audit_log = workdir / "webhook-audit.log"
        self.audit_log.touch()
        self._mode: Mode | None = None
        self._process: ManagedProcess | None = None
        self._service_account_kubeconfig: Path | None = None

    # -- installing ---------------------------------------------------------------------

    def install(self) -> None:
        """Gateway API's standard CRDs (the pinned release), RBAC and ServiceAccount as
        shipped, a token for it, a CA and serving cert."""
        install_gateway_api(self.plane)
        # The Claim CRD, as deploy/base ships it: limits no quota backs and unique keys take
        # their claims there (serve --claims is on by default).
        self.plane.kubectl("apply", "-f", str(CLAIM_CRD))
        crds_established(self.plane.kubectl, "crd/claims.edgewarden.dev")
        files = [arg for path in SHIPPED_RBAC for arg in ("-f", str(path))]
        self.plane.kubectl("apply", *files)
        token = self.plane.kubectl("create", "token", "edgewarden", "-n", WEBHOOK_NAMESPACE,
                                   "--duration=24h").stdout.strip()
        self._service_account_kubeconfig = self.plane.kubeconfig_for(
            SERVICE_ACCOUNT_USER, name="edgewarden-serviceaccount", token=token)
        self.edgewarden("certs", "generate", "--out", str(self.tls_dir),
                        "--host", "127.0.0.1", "--host", "localhost")
        self.plane.kubectl("create", "namespace", PROBE_NAMESPACE)
        self.plane.kubectl("label", "namespace", PROBE_NAMESPACE, "environment=production")

    @property
    def service_account_kubeconfig(self) -> Path:
        """Credentials of the ServiceAccount edgewarden/edgewarden (a bound token)."""
        assert self._service_account_kubeconfig is not None, "install() first"
        return self._service_account_kubeconfig

    def edgewarden(self, *args: str, input: str | None = None, check: bool = True,
                   as_service_account: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the edgewarden command, with the webhook's own credentials by default."""
        kubeconfig = self.service_account_kubeconfig if as_service_account else self.kubeconfig
        env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig),
               "HOME": str(self.workdir)}
        result = subprocess.run([EDGEWARDEN, *args], input=input, capture_output=True,
                                text=True, timeout=120, env=env, cwd=REPO, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"edgewarden {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stderr}{result.stdout}")
        return result

    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, input=input, check=check)

    # -- the server ---------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        assert self._mode is not None, "deploy() first"
        return self._mode

    def serve_args(self, mode: Mode) -> list[str]:
        args = ["serve", "--policies", str(REPO / "policies"), "--host", "127.0.0.1",
                "--port", str(self.port), "--tls-cert", str(self.tls_dir / "tls.crt"),
                "--tls-key", str(self.tls_dir / "tls.key"),
                "--audit-log", str(self.audit_log)]
        return [*args, "--dry-run"] if mode == "audit-only" else args

    def deploy(self, mode: Mode) -> None:
        if self._mode == mode and self.running():
            return
        self.run_server(self.serve_args(mode))
        self.register(mode)
        self._mode = mode
        self.wait_until_answering(mode)

    def run_server(self, args: list[str]) -> None:
        """(Re)start the server with ``args``; returns once it is ready (cache synced)."""
        self.stop_webhook()
        # No drain on SIGTERM (serve's default with a cluster is 5 s): the suite stops and
        # restarts this one server between tests, and tests/serve/test_drain.py and
        # tests/lifecycle check the drain itself.
        self._process = ManagedProcess(
            "edgewarden serve", [EDGEWARDEN, *args, "--drain-seconds", "0"],
            self.workdir / "edgewarden-serve.log",
            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(self.service_account_kubeconfig),
                 "HOME": str(self.workdir)},
            cwd=REPO)
        self._process.start()
        until(self.ready, "edgewarden serve to be ready (/readyz)", READY_TIMEOUT,
              interval=0.2, check=self._process.check_alive)

    def register(self, mode: Mode, ca_bundle: Path | None = None) -> None:
        """Apply the webhook configurations `edgewarden webhook-config --url` renders."""
        failure_policy = FAILURE_POLICIES[mode]
        rendered = self.edgewarden(
            "webhook-config", "--policies", str(REPO / "policies"), "--url", self.url,
            "--ca-bundle", str(ca_bundle or self.tls_dir / "ca.crt"),
            "--failure-policy", failure_policy, "--mutating-failure-policy", failure_policy,
            as_service_account=False).stdout
        self.plane.kubectl("apply", "-f", "-", input=rendered)

    def wait_until_answering(self, mode: Mode) -> None:
        """Until the API server calls this server with this configuration: a NodePort
        dry-run in a production namespace is refused (enforce) or recorded (audit-only)."""
        def answered() -> bool:
            name = f"probe-{uuid.uuid4().hex[:8]}"
            result = self.plane.kubectl(
                "create", "service", "nodeport", name, "--tcp=80:8080", "-n",
                PROBE_NAMESPACE, "--dry-run=server", "-o", "name", check=False)
            if mode == "enforce":
                return result.returncode != 0 and "deny-nodeport-in-production" in result.stderr
            return result.returncode == 0 and any(
                r.get("policy") == "deny-nodeport-in-production"
                for r in self.webhook_records(name))

        until(answered, f"the API server to call edgewarden ({mode})", READY_TIMEOUT,
              interval=0.3)

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def _get(self, path: str) -> tuple[int, str]:
        # The test reads the server's state here; whether its certificate is trusted is
        # the API server's question (and the tests that change certificates ask it).
        context = ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=5,
                                        context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def ready(self) -> bool:
        try:
            status, _ = self._get("/readyz")
        except OSError:
            return False
        return status == 200

    def stop_webhook(self) -> None:
        if self._process is not None:
            self._process.stop()

    def start_webhook(self) -> None:
        assert self._process is not None, "deploy() first"
        self._process.start()
        until(self.ready, "edgewarden serve to be ready again", READY_TIMEOUT, interval=0.2,
              check=self._process.check_alive)

    # -- what it recorded ---------------------------------------------------------------

    def webhook_records(self, name: str | None = None) -> list[dict[str, Any]]:
        records = []
        for line in self.audit_log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written
            if name is None or record.get("name") == name:
                records.append(record)
        return records

    def webhook_metrics(self) -> list[str]:
        _, text = self._get("/metrics")
        return [text]

    def server_log(self) -> str:
        return (self.workdir / "edgewarden-serve.log").read_text(errors="replace")
