"""The chart's life in a real kube-apiserver: install, upgrade, uninstall (issue 23).

The control plane is tests/kube's ``kube_control_plane`` (etcd, kube-apiserver and
kube-controller-manager on 127.0.0.1; no kubelet). The chart is rendered with the helm built
beside them (``helm template``) and applied with kubectl; the pods the Deployment describes
run here as local processes with the Deployment's arguments (and its init container's), the
few things a pod gets from its volumes and network rewritten to local ones (see
:class:`Replica`), and as the ServiceAccount ``edgewarden`` (a token), so the chart's RBAC
is what they have. :class:`ServiceProxy` stands for the Service: one address, forwarding to
the replicas that are ready, as kube-proxy does with the endpoints of ready pods.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.binaries import cache_dir
from tests.kube.fixtures import kube_control_plane  # noqa: F401  (the session fixture)
from tests.kube.net import free_port, free_ports
from tests.kube.processes import ManagedProcess, tail
from tests.support import eventually
from tests.support.kubeconfig import IN_CLUSTER_VARIABLES

REPO = Path(__file__).parents[2]
CHART = REPO / "deploy" / "helm" / "edgewarden"
NAMESPACE = "edgewarden"
HOOK = "helm.sh/hook"


def helm() -> Path:
    path = cache_dir() / "current" / "helm"
    if not path.is_file():
        pytest.skip(f"no helm at {path} (scripts/kube-binaries builds it)")
    return path


class Release:
    """One ``helm template`` of the chart: its objects, the hooks apart."""

    def __init__(self, settings: Sequence[str], workdir: Path) -> None:
        argv = [str(helm()), "template", "edgewarden", str(CHART), "--namespace", NAMESPACE,
                *settings]
        rendered = subprocess.run(argv, capture_output=True, text=True, check=True,
                                  timeout=120).stdout
        documents = [d for d in yaml.safe_load_all(rendered) if d]
        self.hooks = [d for d in documents if HOOK in (d["metadata"].get("annotations") or {})]
        self.objects = [d for d in documents if d not in self.hooks]
        workdir.mkdir(parents=True, exist_ok=True)
        self.manifest = workdir / "objects.yaml"
        self.manifest.write_text(yaml.safe_dump_all(self.objects))

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.objects + self.hooks
                 if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
        return found[0]

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment", "edgewarden")["spec"]["template"]["spec"]
        return spec

    def policies(self, folder: Path) -> Path:
        """The policies ConfigMap's files, where the pod would mount them."""
        folder.mkdir(parents=True, exist_ok=True)
        data = self.one("ConfigMap", "edgewarden-policies")["data"]
        assert data, "the policies ConfigMap is empty"
        for name, text in data.items():
            (folder / name).write_text(text)
        return folder

    def hook_job(self) -> dict[str, Any]:
        return self.one("Job", "edgewarden-uninstall")


class ServiceProxy:
    """The Service: one address, each connection forwarded to a ready replica (round robin),
    bytes passed through untouched (TLS ends at the replica, as it does in a cluster)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._backends: list[int] = []
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="service-proxy").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def add(self, port: int) -> None:
        with self._lock:
            self._backends.append(port)

    def remove(self, port: int) -> None:
        with self._lock:
            self._backends.remove(port)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        with self._lock:
            backends = list(self._backends)
        if not backends:
            client.close()  # no ready endpoint: the API server sees a refused call
            return
        port = backends[next(self._turn) % len(backends)]
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join(30)
        client.close()
        upstream.close()


class Replica:
    """One pod of the Deployment, as a local process: the init container's arguments run
    first, then the server's. What a pod gets from its volumes and network is rewritten:
    the policies and certificate folders become local ones, and the listeners get free
    ports on 127.0.0.1 (a pod has its own network; processes here share one)."""

    def __init__(self, name: str, release: Release, workdir: Path, kubeconfig: Path) -> None:
        self.name = name
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.probe_port, self.metrics_port = free_ports(3)
        spec = release.pod_spec
        folders = {
            "/etc/edgewarden/policies": str(release.policies(workdir / "policies")),
            "/etc/edgewarden/tls": str(workdir / "tls"),
        }
        ports = {"--port": self.port, "--probe-port": self.probe_port,
                 "--metrics-port": self.metrics_port}
        self.init_args = [self._local(a, folders) for a in spec["initContainers"][0]["args"]]
        args = [self._local(a, folders) for a in spec["containers"][0]["args"]]
        for flag, port in ports.items():
            assert flag in args, f"the Deployment's server has no {flag}"
            args[args.index(flag) + 1] = str(port)
        args[args.index("--host") + 1] = "127.0.0.1"
        self.args = args
        container_env = {e["name"]: e["value"] for e in spec["containers"][0].get("env") or []}
        self.env = {k: v for k, v in os.environ.items() if k not in IN_CLUSTER_VARIABLES}
        self.env.update(container_env)
        self.env.update({"KUBECONFIG": str(kubeconfig), "HOSTNAME": name,
                         "PYTHONUNBUFFERED": "1"})
        self.process = ManagedProcess(name, [sys.executable, "-m", "webhook.cli", *self.args],
                                      workdir / "serve.log", env=self.env, cwd=workdir)

    @staticmethod
    def _local(argument: str, folders: dict[str, str]) -> str:
        for pod_path, local in folders.items():
            argument = argument.replace(pod_path, local)
        return argument

    def start(self) -> None:
        """The init container to completion, then the server, until /readyz says ready."""
        init = subprocess.run([sys.executable, "-m", "webhook.cli", *self.init_args],
                              env=self.env, cwd=self.workdir, capture_output=True, text=True,
                              timeout=120, check=False)
        assert init.returncode == 0, f"init container failed:\n{init.stderr}{init.stdout}"
        self.process.start()
        eventually(self.ready, timeout=90, interval=0.3,
                   what=lambda: f"{self.name} ready; log:\n{tail(self.process.log_file)}")

    def ready(self) -> bool:
        self.process.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.probe_port}/readyz",
                                        timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def requests(self, endpoint: str) -> float:
        """The admission requests this replica answered on ``endpoint`` (its /metrics)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as answer:
            text = answer.read().decode()
        pattern = re.compile(
            rf'^edgewarden_requests_total\{{[^}}]*endpoint="{re.escape(endpoint)}"[^}}]*\}} (\S+)$',
            re.M)
        values = pattern.findall(text)
        assert values, f"no edgewarden_requests_total for {endpoint} in /metrics"
        return sum(float(v) for v in values)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture()
def service_proxy() -> Iterator[ServiceProxy]:
    proxy = ServiceProxy()
    try:
        yield proxy
    finally:
        proxy.close()
