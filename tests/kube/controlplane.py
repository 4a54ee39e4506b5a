"""etcd, kube-apiserver and kube-controller-manager on loopback: a Kubernetes API without
nodes, enough for Services, Ingresses, Namespaces, ResourceQuotas, webhooks and
ValidatingAdmissionPolicy (the way controller-runtime's envtest runs the control plane).

Who is who: the tests connect as ``admin`` (group ``system:masters``) with a client
certificate; :meth:`ControlPlane.kubeconfig_for` makes a kubeconfig for any other user or
service account token, so a component can run with exactly the RBAC it ships with.

The controller manager runs only the controllers that the tests need a cluster to have:
``namespace`` (a deleted Namespace's contents go and the Namespace with them) and
``resourcequota`` (a ResourceQuota's ``status.hard``/``used`` are filled in; until then the
ResourceQuota admission plugin enforces nothing), plus ``garbagecollector`` (so owned
objects go as in a cluster) and ``clusterrole-aggregation`` (the built-in view/edit/admin
roles take in the ClusterRoles labelled for them, as edgewarden's read-only
PolicyException role is).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from . import pki
from .binaries import KubeBinaries
from .etcd import Etcd
from .net import free_port
from .processes import ManagedProcess
from .wait import until

ADMISSION_PLUGINS = ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook",
                     "ValidatingAdmissionPolicy", "ResourceQuota")
CONTROLLERS = ("namespace", "resourcequota", "garbagecollector", "clusterrole-aggregation")
SERVICE_CIDR = "10.0.0.0/16"
START_TIMEOUT = 90.0

# Metadata (who, what, verdict, auditAnnotations) of every write; reads and the
# control plane's own housekeeping are left out so the log stays small.
DEFAULT_AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "verbs": ["get", "list", "watch"]},
        {"level": "None", "resources": [{"group": "coordination.k8s.io"},
                                        {"group": "", "resources": ["events"]},
                                        {"group": "events.k8s.io"}]},
        {"level": "Metadata"},
    ],
}


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return (f"kubectl {' '.join(self.cmd[3:])} exited {self.returncode}:\n"
                f"{self.stderr or ''}{self.stdout or ''}")


class ControlPlane:
    """Start with :meth:`start`, always :meth:`stop` (it is idempotent)."""

    def __init__(self, binaries: KubeBinaries, workdir: Path, *,
                 controller_manager: bool = True,
                 audit_policy: dict[str, Any] | None = None,
                 extra_apiserver_args: tuple[str, ...] = ()) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.audit_log = workdir / "audit.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self._pki_dir = workdir / "pki"
        self._pki_dir.mkdir(exist_ok=True)
        self._ca = pki.new_ca("edgewarden-test-kubernetes-ca")
        self.ca_file = self._pki_dir / "ca.crt"
        self.ca_file.write_bytes(self._ca.cert_pem)
        self.etcd = Etcd(binaries.etcd, workdir / "etcd")
        (workdir / "etcd").mkdir(exist_ok=True)
        self.kubeconfig = self.kubeconfig_for("admin", ("system:masters",))
        self.apiserver = ManagedProcess("kube-apiserver", self._apiserver_argv(
            audit_policy or DEFAULT_AUDIT_POLICY, extra_apiserver_args),
            workdir / "kube-apiserver.log")
        self.controller_manager: ManagedProcess | None = None
        if controller_manager:
            kcm_kubeconfig = self.kubeconfig_for("system:kube-controller-manager",
                                                 ("system:masters",), name="kcm")
            self.controller_manager = ManagedProcess("kube-controller-manager", [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--secure-port=0",  # nothing scrapes it; a free port less to find
                "--concurrent-namespace-syncs=5",
            ], workdir / "kube-controller-manager.log")
        self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        admin_cert, admin_key = self._admin_files
        self._ssl.load_cert_chain(admin_cert, admin_key)

    # -- processes -------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.etcd.start()
            # Its ports change if the first ones were taken meanwhile (Etcd.start).
            self.apiserver.argv = [f"--etcd-servers={self.etcd.url}"
                                   if arg.startswith("--etcd-servers=") else arg
                                   for arg in self.apiserver.argv]
            self.start_apiserver()
            if self.controller_manager is not None:
                self.controller_manager.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything, the controller manager first, etcd last."""
        if self.controller_manager is not None:
            self.controller_manager.stop()
        self.apiserver.stop()
        self.etcd.stop()

    def start_apiserver(self, timeout: float = START_TIMEOUT) -> None:
        self.apiserver.start()
        until(self._ready, "kube-apiserver to answer /readyz", timeout,
              interval=0.2, check=self.apiserver.check_alive)

    def stop_apiserver(self) -> None:
        self.apiserver.stop()

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def compact_etcd(self) -> int:
        """Compact etcd's whole history (see :meth:`Etcd.compact`)."""
        return self.etcd.compact()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.server}/readyz", timeout=5,
                                        context=self._ssl) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _apiserver_argv(self, audit_policy: dict[str, Any],
                        extra: tuple[str, ...]) -> list[str]:
        serving_cert, serving_key = pki.serving_certificate(self._ca).write(
            self._pki_dir, "apiserver")
        sa_private, sa_public = pki.service_account_key(self._pki_dir)
        policy_file = self.workdir / "audit-policy.yaml"
        policy_file.write_text(yaml.safe_dump(audit_policy))
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd.url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # Endpoints may not point at loopback, and nothing here needs the `kubernetes`
            # Service to lead anywhere.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--cert-dir={self._pki_dir}",
            f"--tls-cert-file={serving_cert}",
            f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_public}",
            f"--service-account-signing-key-file={sa_private}",
            f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
            # Its controller (tokens for Pods) does not run here, and no Pods are made.
            "--disable-admission-plugins=ServiceAccount",
            f"--audit-policy-file={policy_file}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--profiling=false",
            *extra,
        ]

    # -- clients ---------------------------------------------------------------------

    @property
    def _admin_files(self) -> tuple[Path, Path]:
        return self._pki_dir / "admin.crt", self._pki_dir / "admin.key"

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = (), *,
                       name: str | None = None, token: str | None = None) -> Path:
        """A kubeconfig for ``user`` (a client certificate), or for a bearer ``token``."""
        name = name or user.replace(":", "-")
        if token is not None:
            credentials: dict[str, str] = {"token": token}
        else:
            pair = pki.client_certificate(self._ca, user, groups)
            cert_file, key_file = pair.write(self._pki_dir, name)
            credentials = {"client-certificate-data": _b64(cert_file.read_bytes()),
                           "client-key-data": _b64(key_file.read_bytes())}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "edgewarden-test", "cluster": {
                "server": self.server,
                "certificate-authority-data": _b64(self._ca.cert_pem)}}],
            "users": [{"name": name, "user": credentials}],
            "contexts": [{"name": name, "context": {"cluster": "edgewarden-test",
                                                    "user": name}}],
            "current-context": name,
        }
        path = self.workdir / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with the API server, as admin unless told otherwise."""
        argv = [str(self.binaries.kubectl), "--kubeconfig", str(kubeconfig or self.kubeconfig),
                *args]
        env = {**os.environ, "KUBECACHEDIR": str(self.workdir / "kubectl-cache")}
        result = subprocess.run(argv, input=input, capture_output=True, text=True,
                                timeout=timeout, env=env, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def api_client(self) -> Any:
        """A ``kubernetes`` ApiClient as admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def audit_events(self) -> list[dict[str, Any]]:
        """The API server's audit log, parsed (one JSON event per line)."""
        try:
            lines = self.audit_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return events


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
