"""Several ``edgewarden serve`` replicas behind one webhook URL, against the real API server.

What a Deployment of N pods behind a Service gives a cluster, built from processes on
127.0.0.1:

* a CA this harness makes and one serving certificate for every replica, whose SANs name
  ``127.0.0.1`` and ``localhost``, so the API server verifies the hostname as it would a
  Service's;
* N real ``edgewarden serve`` processes (their own ports, probe and metrics ports), as the
  ServiceAccount ``edgewarden/edgewarden`` with the RBAC that deploy/base ships;
* HAProxy (Debian's package) in TCP mode, round robin over the replicas: one TLS
  connection goes to one replica, as kube-proxy spreads connections over endpoints. The
  TLS session runs end to end between the API server and the replica, so a client
  certificate (``serve --client-ca``) reaches the replica as it would through kube-proxy;
* the Validating/MutatingWebhookConfiguration that ``edgewarden webhook-config --url``
  renders, pointed at the proxy, renamed for this set and narrowed to the namespaces
  labelled for it (the control plane is shared by every test of the session, so other
  tests' namespaces are never sent to these replicas).

Used by tests/replicas and benchmarks/apiserver.py (which puts tests/ on ``sys.path``, so
the control plane's modules are the top-level package ``kube`` there).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

try:  # imported as tests.replicas.fixtures (pytest)
    from ..kube.binaries import in_ci
    from ..kube.controlplane import ControlPlane
    from ..kube.net import free_port, free_ports, listening
    from ..kube.processes import ManagedProcess, stop_together, tail
    from ..kube.wait import crds_established, until
except ImportError:  # imported as replicas.fixtures with tests/ on sys.path (benchmarks)
    from kube.binaries import in_ci  # type: ignore[no-redef]
    from kube.controlplane import ControlPlane  # type: ignore[no-redef]
    from kube.net import free_port, free_ports, listening  # type: ignore[no-redef]
    from kube.processes import ManagedProcess, stop_together, tail  # type: ignore[no-redef]
    from kube.wait import crds_established, until  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[2]
EDGEWARDEN = str(Path(sys.executable).with_name("edgewarden"))
WEBHOOK_NAMESPACE = "edgewarden"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{WEBHOOK_NAMESPACE}:edgewarden"
SHIPPED_RBAC = (REPO / "deploy/base/namespace.yaml", REPO / "deploy/base/serviceaccount.yaml",
                REPO / "deploy/base/rbac.yaml")
CLAIM_CRD = REPO / "deploy/crds/edgewarden.dev_claims.yaml"
# The label that sends a namespace to one replica set's webhooks (value: the set's id).
SET_LABEL = "edgewarden.test/replicas"
QUOTA_NAME = "edgewarden-loadbalancers"
MANAGED_BY = "app.kubernetes.io/managed-by=edgewarden"
LB_CAP_ANNOTATION = "edgewarden.dev/max-loadbalancers"
LEASE_NAME = "edgewarden-leader"
READY_TIMEOUT = 90.0
# The webhooks' timeoutSeconds and serve's --webhook-timeout (a reservation's life is
# based on it): roomier than the default 5 s, as 200 concurrent creates on a small shared
# machine queue in front of three Python processes.
WEBHOOK_TIMEOUT = 15
HOW_HAPROXY = "install Debian's haproxy package (scripts/test does)"


def haproxy_binary() -> str:
    """HAProxy's path, else a skip (a laptop) or a failure (CI) that says why."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None)
    if found is None:
        if in_ci():
            pytest.fail(f"CI=true and haproxy is missing: {HOW_HAPROXY}", pytrace=False)
        pytest.skip(f"no haproxy to put replicas behind one URL: {HOW_HAPROXY}")
    return found


@dataclass(frozen=True)
class WebhookCertificates:
    """The CA the API server trusts for the webhook (caBundle) and the replicas' pair."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def generate(cls, folder: Path) -> WebhookCertificates:
        from webhook.certs.files import generate_certificates

        made = generate_certificates(folder, service="edgewarden", namespace=WEBHOOK_NAMESPACE,
                                     hosts_extra=("127.0.0.1", "localhost"))
        return cls(made.ca_file, made.cert_file, made.key_file)


class Proxy:
    """HAProxy on 127.0.0.1, TCP mode, round robin over ``backends`` (ports on 127.0.0.1)."""

    def __init__(self, binary: str, workdir: Path, backends: Sequence[int]) -> None:
        self.port = free_port()
        self.config = workdir / "haproxy.cfg"
        servers = "\n".join(f"    server replica-{index} 127.0.0.1:{port}"
                            for index, port in enumerate(backends))
        # No health checks: the harness registers the webhooks only once every replica is
        # ready, and a test that stops a replica means the proxy to keep sending to it.
        self.config.write_text(f"""\
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend webhook
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance roundrobin
{servers}
""")
        check = subprocess.run([binary, "-c", "-f", str(self.config)], capture_output=True,
                               text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused {self.config}: {check.stderr or check.stdout}")
        # -db: stay in the foreground, so the process is the one we stop.
        self.process = ManagedProcess("haproxy", [binary, "-db", "-f", str(self.config)],
                                      workdir / "haproxy.log")

    def start(self) -> None:
        self.process.start()
        until(lambda: listening(self.port), "haproxy to listen", 30.0, interval=0.05,
              check=self.process.check_alive)

    def stop(self) -> None:
        self.process.stop()


class Replica:
    """One ``edgewarden serve`` process."""

    def __init__(self, index: int, workdir: Path, argv: list[str], env: dict[str, str],
                 port: int, probe_port: int, metrics_port: int) -> None:
        self.index = index
        self.hostname = env["HOSTNAME"]
        self.port = port
        self.probe_port = probe_port
        self.metrics_port = metrics_port
        self.log_file = workdir / f"serve-{index}.log"
        self.process = ManagedProcess(f"edgewarden serve #{index}", argv, self.log_file,
                                      env=env, cwd=REPO)

    def _get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def ready(self) -> bool:
        try:
            return self._get(self.probe_port, "/readyz")[0] == 200
        except OSError:
            return False

    def metrics(self) -> str:
        return self._get(self.metrics_port, "/metrics")[1]

    def admissions(self) -> int:
        """Reviews this replica answered on /validate and /mutate, whatever the verdict."""
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("edgewarden_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def log(self) -> str:
        return tail(self.log_file, 60)


class ReplicaSet:
    """``count`` replicas behind one HAProxy URL, registered with the API server.

    ``serve_args`` are added to every replica's command line (``--manage-quotas``,
    ``--client-ca FILE``...). :meth:`start` returns once the API server calls the set;
    :meth:`stop` unregisters it, stops everything and deletes the ResourceQuotas the
    replicas created (so later tests of the session find the cluster as it was)."""

    def __init__(self, plane: ControlPlane, workdir: Path, certificates: WebhookCertificates,
                 service_account_kubeconfig: Path, *, count: int = 3,
                 serve_args: Sequence[str] = (), policies: Sequence[Path] = (),
                 haproxy: str | None = None, webhook_timeout: int = WEBHOOK_TIMEOUT) -> None:
        self.plane = plane
        self.workdir = workdir
        self.certificates = certificates
        # A letter first: an id like 1e234567 would be a number to the API server's YAML.
        self.id = "r" + uuid.uuid4().hex[:7]
        self.name = f"edgewarden-replicas-{self.id}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.policies = list(policies) or [REPO / "policies"]
        self.webhook_timeout = webhook_timeout
        env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(service_account_kubeconfig),
               "HOME": str(workdir)}
        self.replicas: list[Replica] = []
        for index in range(count):
            port, probe_port, metrics_port = free_ports(3)
            argv = [EDGEWARDEN, "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--tls-cert", str(certificates.cert_file),
                    "--tls-key", str(certificates.key_file),
                    "--probe-port", str(probe_port), "--metrics-port", str(metrics_port),
                    "--leader-election-namespace", WEBHOOK_NAMESPACE,
                    "--webhook-timeout", str(webhook_timeout),
                    # Isolation on a shared control plane: no PolicyReports written into
                    # other tests' namespaces, no Policy objects other tests left behind.
                    "--audit-interval", "0", "--no-cluster-objects",
                    "--audit-log", str(workdir / f"audit-{index}.log"),
                    *(arg for path in self.policies for arg in ("--policies", str(path))),
                    *serve_args]
            # HOSTNAME as a pod has it: the leader Lease's holder identity starts with it.
            self.replicas.append(Replica(index, workdir, argv,
                                         {**env, "HOSTNAME": f"{self.name}-{index}"},
                                         port, probe_port, metrics_port))
        self.proxy = Proxy(haproxy or haproxy_binary(), workdir,
                           [r.port for r in self.replicas])
        self.url = f"https://127.0.0.1:{self.proxy.port}"
        self._quotas_before: set[str] | None = None  # None: never started
        self._registered = False

    # -- life ---------------------------------------------------------------------------

    def start(self) -> ReplicaSet:
        self._quotas_before = self.owned_quota_namespaces()
        try:
            for replica in self.replicas:
                replica.process.start()
            for replica in self.replicas:
                until(replica.ready, f"edgewarden serve #{replica.index} to be ready",
                      READY_TIMEOUT, interval=0.2, check=replica.process.check_alive)
            self.proxy.start()
            self.register()
            self.wait_until_called()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._registered:
            self.plane.kubectl("delete", "validatingwebhookconfiguration,"
                               "mutatingwebhookconfiguration", "-l",
                               f"{SET_LABEL}={self.id}", check=False)
            self._registered = False
        self.proxy.stop()
        stop_together([replica.process for replica in self.replicas])
        if self._quotas_before is None:
            return
        made = sorted(self.owned_quota_namespaces() - self._quotas_before)
        if made:  # one kubectl for them all (one per namespace took seconds each)
            quotas = [{"apiVersion": "v1", "kind": "ResourceQuota",
                       "metadata": {"name": QUOTA_NAME, "namespace": namespace}}
                      for namespace in made]
            self.plane.kubectl("delete", "--wait=false", "--ignore-not-found", "-f", "-",
                               input=yaml.safe_dump_all(quotas), check=False)

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- registration -------------------------------------------------------------------

    def configurations(self) -> list[dict[str, Any]]:
        """What ``webhook-config --url`` renders for the proxy's URL, renamed for this set
        and narrowed to the namespaces labelled ``SET_LABEL=<id>``."""
        rendered = subprocess.run(
            [EDGEWARDEN, "webhook-config",
             *(arg for path in self.policies for arg in ("--policies", str(path))),
             "--url", self.url, "--ca-bundle", str(self.certificates.ca_file),
             "--timeout", str(self.webhook_timeout)],
            capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
        if rendered.returncode != 0:
            raise RuntimeError(f"edgewarden webhook-config exited {rendered.returncode}: "
                               f"{rendered.stderr}")
        documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        assert documents, "webhook-config rendered nothing"
        for document in documents:
            metadata = document["metadata"]
            metadata["name"] = f"{metadata['name']}-{self.id}"
            metadata.setdefault("labels", {})[SET_LABEL] = self.id
            for webhook in document["webhooks"]:
                selector = webhook.setdefault("namespaceSelector", {})
                selector.setdefault("matchExpressions", []).append(
                    {"key": SET_LABEL, "operator": "In", "values": [self.id]})
        return documents

    def register(self) -> None:
        documents = self.configurations()
        self.plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
        self._registered = True

    def namespace(self, name: str | None = None, *, labels: dict[str, str] | None = None,
                  annotations: dict[str, str] | None = None) -> str:
        """A new namespace sent to this set's webhooks."""
        name = name or f"r-{self.id}-{uuid.uuid4().hex[:6]}"
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {SET_LABEL: self.id, **(labels or {})},
                             "annotations": dict(annotations or {})}}
        self.plane.kubectl("create", "-f", "-", input=json.dumps(body))
        return name

    def wait_until_called(self) -> None:
        """Until the API server calls this set: a NodePort dry-run in a production namespace
        of the set is refused by deny-nodeport-in-production."""
        probe = self.namespace(f"r-{self.id}-probe", labels={"environment": "production"})

        def refused() -> bool:
            result = self.plane.kubectl(
                "-n", probe, "create", "service", "nodeport", f"p-{uuid.uuid4().hex[:6]}",
                "--tcp=80:8080", "--dry-run=server", "-o", "name", check=False)
            return result.returncode != 0 and "deny-nodeport-in-production" in result.stderr

        until(refused, "the API server to call the replicas through the proxy",
              READY_TIMEOUT, interval=0.3)

    # -- what the replicas did ----------------------------------------------------------

    def admissions(self) -> list[int]:
        """Reviews answered so far, per replica."""
        return [replica.admissions() for replica in self.replicas]

    def leader(self) -> Replica | None:
        """The replica holding the leader Lease (its identity starts with its HOSTNAME)."""
        found = self.plane.kubectl("-n", WEBHOOK_NAMESPACE, "get", "lease", LEASE_NAME,
                                   "-o", "json", check=False)
        if found.returncode != 0:
            return None
        holder = (json.loads(found.stdout).get("spec") or {}).get("holderIdentity") or ""
        return next((r for r in self.replicas if holder.startswith(f"{r.hostname}_")), None)

    def owned_quota_namespaces(self) -> set[str]:
        listed = self.plane.kubectl("get", "resourcequota", "-A", "-l", MANAGED_BY,
                                    "-o", "json", check=False)
        if listed.returncode != 0:
            return set()
        return {item["metadata"]["namespace"] for item in json.loads(listed.stdout)["items"]
                if item["metadata"]["name"] == QUOTA_NAME}

    def wait_for_quotas(self, caps: dict[str, int], timeout: float = 90.0) -> None:
        """Until each namespace's quota exists with its cap in ``status.hard``: the quota
        controller fills the status, and the API server enforces nothing before."""
        def enforced() -> bool:
            for namespace, cap in caps.items():
                found = self.plane.kubectl("-n", namespace, "get", "resourcequota",
                                           QUOTA_NAME, "-o", "json", check=False)
                if found.returncode != 0:
                    return False
                hard = (json.loads(found.stdout).get("status") or {}).get("hard") or {}
                if quantity(hard.get("services.loadbalancers", "")) != cap:
                    return False
            return True

        until(enforced, "the leader's ResourceQuotas to be enforced", timeout, interval=0.5,
              check=self._check_alive)

    def _check_alive(self) -> None:
        for replica in self.replicas:
            replica.process.check_alive()
        self.proxy.process.check_alive()

    def logs(self) -> str:
        return "\n".join(f"--- serve #{r.index}\n{r.log()}" for r in self.replicas)


def quantity(text: str) -> int | None:
    """A whole-number Kubernetes quantity as the API server writes it back ("3", "1M")."""
    suffixes = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                "E": 10**18}
    digits = text.rstrip("kMGTPE")
    if not digits.isdigit() or text[len(digits):] not in suffixes:
        return None
    return int(digits) * suffixes[text[len(digits):]]


def install_rbac(plane: ControlPlane) -> Path:
    """edgewarden's CRDs (deploy/crds), namespace, ServiceAccount and RBAC as deploy/base
    ships them, and a kubeconfig with a token of that ServiceAccount (so a permission the
    replicas lack fails here as in a cluster)."""
    crds = sorted(p for p in (REPO / "deploy" / "crds").glob("*.yaml")
                  if p.name != "kustomization.yaml")
    assert crds, "deploy/crds holds edgewarden's CRDs"
    plane.kubectl("apply", *(arg for path in crds for arg in ("-f", str(path))))
    crds_established(plane.kubectl, *(f"-f{path}" for path in crds))
    plane.kubectl("apply", *(arg for path in SHIPPED_RBAC for arg in ("-f", str(path))))
    # The Claim CRD (serve --claims, on by default): claims arbitrate limits and hosts.
    plane.kubectl("apply", "-f", str(CLAIM_CRD))
    crds_established(plane.kubectl, "crd/claims.edgewarden.dev")
    token = plane.kubectl("create", "token", "edgewarden", "-n", WEBHOOK_NAMESPACE,
                          "--duration=24h").stdout.strip()
    path: Path = plane.kubeconfig_for(SERVICE_ACCOUNT_USER, name="edgewarden-replicas-sa",
                                      token=token)
    return path


def admin_ssl_context(plane: ControlPlane) -> ssl.SSLContext:
    """A TLS context that trusts the API server and presents the admin's certificate."""
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(plane.workdir / "pki" / "admin.crt",
                            plane.workdir / "pki" / "admin.key")
    return context


def load_balancer(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def count_load_balancers(plane: ControlPlane, namespaces: Iterable[str]) -> dict[str, int]:
    counts = {}
    for namespace in namespaces:
        listed = json.loads(plane.kubectl("-n", namespace, "get", "services", "-o",
                                          "json").stdout)["items"]
        counts[namespace] = sum(1 for s in listed if s["spec"].get("type") == "LoadBalancer")
    return counts


@dataclass(frozen=True)
class Outcome:
    """What the API server answered one CREATE."""

    namespace: str
    status: int
    message: str

    @property
    def created(self) -> bool:
        return self.status == 201


def post_concurrently(plane: ControlPlane, creates: Sequence[tuple[str, str, dict[str, Any]]],
                      ) -> list[Outcome]:
    """POST every ``(namespace, collection path, object)`` to the API server at the same
    moment: one thread and one TLS connection each, released together by a barrier once all
    are connected. The path may name ``{namespace}``."""
    context = admin_ssl_context(plane)
    start = threading.Barrier(len(creates))
    outcomes: list[Outcome | None] = [None] * len(creates)
    failures: list[BaseException] = []

    def create(index: int, namespace: str, path: str, body: dict[str, Any]) -> None:
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", plane.port, context=context,
                                                     timeout=120)
            connection.connect()
            start.wait(timeout=120)
            connection.request("POST", path.format(namespace=namespace), json.dumps(body),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
            connection.close()
            message = "" if response.status == 201 else str(answer.get("message", answer))
            outcomes[index] = Outcome(namespace, response.status, message)
        except BaseException as error:  # reported in the caller's thread
            failures.append(error)
            start.abort()

    threads = [threading.Thread(target=create, args=(i, *c)) for i, c in enumerate(creates)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a CREATE never returned"
    assert not failures, failures[:3]
    done = [outcome for outcome in outcomes if outcome is not None]
    assert len(done) == len(creates)
    return done


def create_concurrently(plane: ControlPlane, creates: Sequence[tuple[str, dict[str, Any]]],
                        ) -> list[Outcome]:
    """Every ``(namespace, Service)`` created at the same moment (post_concurrently)."""
    return post_concurrently(plane, [(namespace, "/api/v1/namespaces/{namespace}/services", body)
                                     for namespace, body in creates])


# --- the API server presents a client certificate to the webhook -----------------------

ADMISSION_CONFIG_FLAG = "--admission-control-config-file"


def admission_configuration(folder: Path, webhook_host_port: str, cert_pem: bytes,
                            key_pem: bytes) -> Path:
    """The AdmissionConfiguration (and the kubeconfig it names) that makes kube-apiserver
    present ``cert_pem`` to every webhook reached at ``webhook_host_port``, as docs/certs.md
    documents it. For a ``clientConfig.url`` webhook the API server looks the user up by
    the URL's ``host:port`` (k8s.io/apiserver/pkg/util/webhook/authentication.go)."""
    import base64

    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig = folder / "webhook-kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": webhook_host_port, "user": {
            "client-certificate-data": base64.b64encode(cert_pem).decode(),
            "client-key-data": base64.b64encode(key_pem).decode()}}],
    }))
    kubeconfig.chmod(0o600)
    plugin_config = {"apiVersion": "apiserver.config.k8s.io/v1",
                     "kind": "WebhookAdmissionConfiguration",
                     "kubeConfigFile": str(kubeconfig)}
    config = folder / "admission-config.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": name, "configuration": plugin_config}
                    for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")],
    }))
    return config


def restart_apiserver_with(plane: ControlPlane, admission_config: Path | None) -> None:
    """Restart kube-apiserver with ``--admission-control-config-file`` (or without it, for
    None): it reads the file, and the webhook credentials, only when it starts."""
    argv = [arg for arg in plane.apiserver.argv if not arg.startswith(ADMISSION_CONFIG_FLAG)]
    if admission_config is not None:
        argv.append(f"{ADMISSION_CONFIG_FLAG}={admission_config}")
    plane.apiserver.argv = argv
    plane.restart_apiserver()
