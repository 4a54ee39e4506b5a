"""Figures through a real API server (the local control plane of tests/kube).

1. Service CREATE latency, one client, one request at a time: p50/p99 of creates the
   webhook does not judge and of creates it judges (edgewarden's two configurations from
   ``webhook-config --url``, failurePolicy Fail): what the webhook adds to a create. The
   configurations are registered once, with an objectSelector on a label, and the creates
   alternate one by one between Services with the label and without it, so load from
   elsewhere on the machine hits both series alike, down to the second. A third series,
   in the same rotation, is judged by a webhook that does nothing
   (benchmarks/raw_asgi.py, the throughput ceiling, under plain uvicorn over TLS, registered
   with the same configurations and a label of its own): what any webhook call costs this
   API server on this machine, so that the webhook's own part is the difference. With
   ``--baseline``, another build (the one an issue measured) judges a fourth series in the
   same rotation. Each webhook besides edgewarden is registered with edgewarden's
   configurations under names, URLs and a label selector of its own.
2. The watch cache at scale: Namespaces and Services are created (up to 10,000 and
   100,000, within a time budget; the figures say how many were made), then
   ``edgewarden serve`` is started: seconds from its start to ready (every cache synced,
   ``/readyz`` 200 on the probe port, as the chart's kubelet probes ask, polled every
   50 ms; including the Python start), per-kind sync times from its log, and its
   RSS once synced, beside the RSS of an idle server on an empty cluster.

3. What each part adds to a CREATE (issue 19), on a control plane of its own with the
   controller manager (the quota controller fills ResourceQuota status): replicas of
   ``edgewarden serve`` behind HAProxy (tests/replicas/fixtures.py, the harness of the
   multi-replica tests), and for a LoadBalancer Service and an Ingress with a new host
   each: p50/p99 with no webhook, with the webhook and its policies, and with
   ``--manage-quotas`` too, and with claims (``serve --claims``, where this build has
   them; the parts before turn them off). Configurations rotate in blocks. Beside each,
   the API server's writes per create, from its own ``apiserver_request_total`` (every
   client's POST/PUT/PATCH/DELETE, by resource; Lease renewals are time-based and shown
   apart). Then the race of tests/replicas/test_loadbalancer_caps.py with each replica's
   own count only, with claims only, and with ``--manage-quotas``: how many LoadBalancers
   over the caps each round left.

Run from the repository root after scripts/kube-binaries::

    .venv/bin/python benchmarks/apiserver.py                  # full run, ~20 minutes
    .venv/bin/python benchmarks/apiserver.py --creates 300 --namespaces 200 --services 2000
    .venv/bin/python benchmarks/apiserver.py --only-parts     # part 3 only (needs haproxy)
    # part 1 only, with another build's edgewarden judging a series of its own:
    .venv/bin/python benchmarks/apiserver.py --skip-population --skip-parts \
        --baseline ../other-build/.venv/bin/edgewarden

Figures only: nothing here is asserted by the tests. Results: a table on stdout and JSON in
benchmarks/results/. The API server writes no audit log here (its cost is not ours), and
the population's Services are headless (``clusterIP: None``, no address to allocate, so
100,000 fit in the service range); the webhook's cache keeps the same fields of them.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import platform
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# tests/replicas/fixtures imports the test helpers as the ``tests`` package, as pytest does.
sys.path.insert(1, str(ROOT))

from kube.binaries import locate  # noqa: E402
from kube.controlplane import ControlPlane  # noqa: E402
from kube.net import free_port  # noqa: E402
from kube.processes import ManagedProcess  # noqa: E402
from kube.wait import until  # noqa: E402
from replicas.fixtures import (  # noqa: E402
    LB_CAP_ANNOTATION,
    ReplicaSet,
    WebhookCertificates,
    count_load_balancers,
    create_concurrently,
    install_rbac,
    load_balancer,
)

RESULTS = ROOT / "benchmarks" / "results"
EDGEWARDEN = str(Path(sys.executable).with_name("edgewarden"))
NO_AUDIT = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
SYNCED = re.compile(r"^(\S+ \S+) INFO edgewarden\.cluster: (\w+) cache synced: (\d+) objects")


@dataclass
class Figures:
    machine: str
    kubernetes: str
    creates: int
    without_webhook_ms: dict[str, float] = field(default_factory=dict)
    with_webhook_ms: dict[str, float] = field(default_factory=dict)
    # A webhook that does nothing, in the same rotation.
    with_idle_webhook_ms: dict[str, float] = field(default_factory=dict)
    # --baseline: another build's edgewarden, in the same rotation.
    baseline: str = ""
    with_baseline_ms: dict[str, float] = field(default_factory=dict)
    # HopSplit.figures() of each registered build: where its added time goes.
    hop_split: dict[str, dict[str, float]] = field(default_factory=dict)
    namespaces: int = 0
    services: int = 0
    population_seconds: float = 0.0
    population_budget_seconds: float = 0.0
    start_to_ready_seconds: float = 0.0
    synced_after_seconds: dict[str, float] = field(default_factory=dict)
    rss_mib_synced: float = 0.0
    # CPU seconds serve used from its start to ready: steadier than the wall time on a
    # shared machine, where every wait is stretched by the neighbours' load.
    cpu_seconds_to_ready: float = 0.0
    rss_mib_empty_cluster: float = 0.0
    parts: list[PartFigures] = field(default_factory=list)
    parts_replicas: int = 0
    parts_claims: bool = False
    races: list[RaceRound] = field(default_factory=list)


@dataclass
class PartFigures:
    """One configuration, one kind of CREATE."""

    configuration: str
    kind: str
    creates: int
    latency_ms: dict[str, float]
    # "resource[/subresource] VERB" -> API-server writes per create, every client's
    writes_per_create: dict[str, float]
    seconds: float = 0.0  # wall time of the measured creates (for the Lease renewals)


@dataclass
class RaceRound:
    configuration: str
    caps: list[int]
    created: list[int]
    overshoot: int = field(init=False)  # LoadBalancers over the caps, in the JSON too

    def __post_init__(self) -> None:
        self.overshoot = sum(max(0, made - cap)
                             for made, cap in zip(self.created, self.caps, strict=True))


class Api:
    """A small JSON client on one keep-alive TLS connection, as admin."""

    def __init__(self, plane: ControlPlane) -> None:
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        context.load_cert_chain(plane.workdir / "pki" / "admin.crt",
                                plane.workdir / "pki" / "admin.key")
        self._connection = http.client.HTTPSConnection("127.0.0.1", plane.port,
                                                       context=context, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> int:
        self._connection.request("POST", path, json.dumps(body),
                                 {"Content-Type": "application/json"})
        response = self._connection.getresponse()
        response.read()
        return response.status


def service(name: str, headless: bool = False,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name},
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name, **(labels or {})}},
            "spec": spec}


# The label an interleaved series' judged creates carry (the configurations select it).
JUDGED = {"bench.edgewarden.dev/judged": "true"}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    return {"p50": round(pick(0.50) * 1000, 2), "p90": round(pick(0.90) * 1000, 2),
            "p99": round(pick(0.99) * 1000, 2), "mean": round(statistics.mean(ordered) * 1000, 2)}


def interleaved_latencies(plane: ControlPlane, namespace: str, count: int,
                          series: dict[str, dict[str, str] | None]) -> dict[str, list[float]]:
    """``count`` creates of each series (its name: the labels its Services carry, which
    select who judges them), one of each in turn; the order rotates by one each turn, so
    each series goes first, second and so on equally often."""
    api = Api(plane)
    path = f"/api/v1/namespaces/{namespace}/services"
    names = list(series)
    for index in range(20):  # warm the connection, the API server's caches and the webhooks'
        for name in names:
            api.post(path, service(f"warm-{name}-{index}", labels=series[name]))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(count):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            created = f"{name}-{index}"
            body = service(created, labels=series[name])
            started = time.perf_counter()
            status = api.post(path, body)
            samples[name].append(time.perf_counter() - started)
            if status != 201:
                raise RuntimeError(f"create {created}: HTTP {status}")
    return samples


class Server:
    """`edgewarden serve` on loopback, reading the cluster as admin."""

    def __init__(self, plane: ControlPlane, workdir: Path, executable: str = EDGEWARDEN) -> None:
        self.plane = plane
        self.workdir = workdir
        self.executable = executable
        self.port = free_port()
        # Ready is polled where the chart's kubelet probes ask (values.yaml probes.port):
        # plain HTTP on a listener of its own. Polled over HTTPS every 50 ms, a TLS
        # handshake each, the polling itself held the first sync back by about 0.4 s.
        self.probe_port = free_port()
        self.tls = workdir / "tls"
        self.log = workdir / "serve.log"
        env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(plane.kubeconfig),
               "HOME": str(workdir)}
        subprocess.run([EDGEWARDEN, "certs", "generate", "--out", str(self.tls),
                        "--host", "127.0.0.1"], check=True, env=env, capture_output=True)
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess("edgewarden serve", [
            executable, "serve", "--policies", str(ROOT / "policies"), "--host", "127.0.0.1",
            "--port", str(self.port), "--probe-port", str(self.probe_port),
            "--tls-cert", str(self.tls / "tls.crt"),
            "--tls-key", str(self.tls / "tls.key"), "--audit-log", str(workdir / "audit.log"),
            "--log-level", "info"], self.log, env=env, cwd=ROOT)

    def ready(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.probe_port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def start(self, timeout: float = 900) -> float:
        """Start it; seconds until ready."""
        self.log.write_text("")
        started = time.monotonic()
        self.process.start()
        until(self.ready, "edgewarden serve to be ready", timeout, interval=0.05,
              check=self.process.check_alive)
        return time.monotonic() - started

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return round(int(match.group(1)) / 1024, 1)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)

    def sync_times(self) -> dict[str, float]:
        """Seconds from the server's first log line to each kind's 'cache synced' line."""
        stamps = []
        for line in self.log.read_text().splitlines():
            match = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) ", line)
            if match:
                stamps.append((datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"), line))
        first = stamps[0][0]
        synced = {}
        for stamp, line in stamps:
            match = SYNCED.match(line)
            if match:
                synced[match.group(2)] = round((stamp - first).total_seconds(), 2)
        return synced

    def configurations(self, selector: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The configurations ``webhook-config`` renders; ``selector``: each of their
        webhooks judges only objects with these labels."""
        rendered = subprocess.run(
            [self.executable, "webhook-config", "--policies", str(ROOT / "policies"),
             "--url", f"https://127.0.0.1:{self.port}", "--ca-bundle", str(self.tls / "ca.crt")],
            check=True, capture_output=True, text=True).stdout
        documents = [d for d in yaml.safe_load_all(rendered) if d]
        if selector:
            for document in documents:
                for webhook in document.get("webhooks") or []:
                    chosen = webhook.setdefault("objectSelector", {})
                    chosen["matchLabels"] = {**chosen.get("matchLabels", {}), **selector}
        return documents

    def register(self, selector: dict[str, str] | None = None, renamed: str | None = None,
                 port: int | None = None) -> None:
        """``renamed``: under configuration names, webhook names and a label of its own
        (another webhook registered beside this one; see ``renamed_configurations``), its
        URLs on ``port`` if given (another server's)."""
        documents = self.configurations(selector)
        if renamed is not None:
            documents = renamed_configurations(documents, renamed, self.port,
                                               port or self.port)
        self.plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def unregister(self, renamed: str | None = None) -> None:
        self.plane.kubectl("delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration",
                           "-l", f"app.kubernetes.io/name={renamed or 'edgewarden'}")


def renamed_configurations(documents: list[dict[str, Any]], name: str, port: int,
                           new_port: int) -> list[dict[str, Any]]:
    """edgewarden's configurations as another webhook's: configuration names prefixed
    ``name-``, webhook names ``name.`` (still qualified, and its own for the API server's
    metrics), the label ``app.kubernetes.io/name=name``, and the URLs' port ``new_port``."""
    ours = f"https://127.0.0.1:{port}"
    for document in documents:
        metadata = document["metadata"]
        metadata["name"] = f"{name}-{metadata['name']}"
        metadata["labels"] = {"app.kubernetes.io/name": name}
        for webhook in document.get("webhooks") or []:
            webhook["name"] = f"{name}.{webhook['name']}"
            url = webhook["clientConfig"]["url"]
            assert url.startswith(ours), url
            webhook["clientConfig"]["url"] = f"https://127.0.0.1:{new_port}{url[len(ours):]}"
    return documents


# The labels of the creates the webhook that does nothing, and the baseline, judge; and
# the baseline's name (renamed_configurations).
IDLE_JUDGED = {"bench.edgewarden.dev/judged-by": "idle"}
BASELINE = "baseline"
BASELINE_JUDGED = {"bench.edgewarden.dev/judged-by": BASELINE}


class IdleWebhook:
    """A webhook that does nothing: benchmarks/raw_asgi.py (it parses the review and allows
    it) under plain uvicorn, over TLS with edgewarden's certificate, registered with
    edgewarden's own configurations (the same rules and matchConditions, so the API server
    calls it exactly when it calls edgewarden) under names and a selector of its own."""

    NAME = "idle"

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = free_port()
        self.process = ManagedProcess(self.NAME, [
            sys.executable, "-m", "uvicorn", "benchmarks.raw_asgi:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
            "--ssl-certfile", str(server.tls / "tls.crt"),
            "--ssl-keyfile", str(server.tls / "tls.key")],
            server.workdir / "idle.log", cwd=ROOT)

    def start(self) -> None:
        self.process.start()
        context = ssl.create_default_context(cafile=str(self.server.tls / "ca.crt"))

        def answers() -> bool:
            connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5,
                                                     context=context)
            try:
                connection.request("POST", "/validate", json.dumps(
                    {"request": {"uid": "probe"}}), {"Content-Type": "application/json"})
                return connection.getresponse().status == 200
            except OSError:
                return False
            finally:
                connection.close()

        until(answers, "the idle webhook to answer", 60, interval=0.05,
              check=self.process.check_alive)

    def register(self, selector: dict[str, str]) -> None:
        self.server.register(selector, renamed=self.NAME, port=self.port)

    def unregister(self) -> None:
        self.server.unregister(renamed=self.NAME)


def probe_namespace(plane: ControlPlane) -> str:
    """The production namespace the probes' dry-run creates go to, made on first use."""
    if plane.kubectl("get", "namespace", "bench-probe", check=False).returncode != 0:
        plane.kubectl("create", "namespace", "bench-probe")
        plane.kubectl("label", "namespace", "bench-probe", "environment=production")
    return "bench-probe"


def wait_until_called(plane: ControlPlane, expected: bool,
                      labels: dict[str, str] | None = None) -> None:
    """Until the API server calls the webhook (a NodePort in production, with ``labels``, is
    refused), or no longer does (it is admitted)."""
    probe = service("probe", labels=labels)
    probe["metadata"]["namespace"] = probe_namespace(plane)
    probe["spec"]["type"] = "NodePort"
    until(lambda: (plane.kubectl("create", "-f", "-", "--dry-run=server", check=False,
                                 input=json.dumps(probe))
                   .returncode != 0) == expected,
          f"the API server {'to call' if expected else 'to stop calling'} edgewarden", 60,
          interval=0.2)


def wait_until_counted(plane: ControlPlane, split: HopSplit, labels: dict[str, str]) -> None:
    """Until the API server calls ``split``'s webhook for an object with ``labels`` (by
    its own count of calls: the webhook that does nothing allows everything)."""
    before = split.calls(plane)
    probe = service(f"probe-{split.webhook.split('.')[0]}", labels=labels)
    probe["metadata"]["namespace"] = probe_namespace(plane)

    def called() -> bool:
        plane.kubectl("create", "-f", "-", "--dry-run=server", check=False,
                      input=json.dumps(probe))
        return split.calls(plane) > before

    until(called, f"the API server to call {split.webhook}", 60, interval=0.2)


def populate(plane: ControlPlane, namespaces: int, services: int, budget: float,
             workers: int) -> tuple[int, int, float]:
    """Create namespaces, then services spread over them, until done or out of time."""
    deadline = time.monotonic() + budget
    started = time.monotonic()
    local = threading.local()
    made = {"namespaces": 0, "services": 0}
    lock = threading.Lock()

    def api() -> Api:
        if not hasattr(local, "api"):
            local.api = Api(plane)
        return local.api  # type: ignore[no-any-return]

    def make_namespace(index: int) -> None:
        if time.monotonic() > deadline:
            return
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": f"pop-{index}", "labels": {"team": f"t{index % 50}"}}}
        if api().post("/api/v1/namespaces", body) == 201:
            with lock:
                made["namespaces"] += 1

    def make_service(index: int) -> None:
        if time.monotonic() > deadline:
            return
        namespace = f"pop-{index % made['namespaces']}"
        status = api().post(f"/api/v1/namespaces/{namespace}/services",
                            service(f"svc-{index}", headless=True))
        if status == 201:
            with lock:
                made["services"] += 1

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(make_namespace, range(namespaces)))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(make_service, range(services)))
    return made["namespaces"], made["services"], time.monotonic() - started


# --- part 3: what each part adds --------------------------------------------------------

HUGE_CAP = 1_000_000  # a cap no series reaches: the creates are measured, not refused
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"}
TIME_BASED = {"leases"}  # renewals every few seconds, whatever is created
CLAIMS = importlib.util.find_spec("webhook.cluster.claims") is not None
# Each configuration adds one part to the one before; serve's command line for it (None: no
# webhook registered at all). Claims are on by default where they exist, so the parts
# before them turn them off.
NO_CLAIMS: tuple[str, ...] = ("--no-claims",) if CLAIMS else ()
PART_CONFIGS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("no webhook", None),
    ("webhook, the policies", NO_CLAIMS),
    ("+ --manage-quotas", (*NO_CLAIMS, "--manage-quotas")),
    *((("+ claims", ("--manage-quotas",)),) if CLAIMS else ()),
)
RACE_CAPS = [1, 2, 3, 4, 5]
# Who keeps the cap in the race: each replica's own count only (before issue 19), a Count
# claim (claims without a quota to back the cap), the quota (the default installs).
RACE_CONFIGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("each replica's own count (no quota, no claims)", NO_CLAIMS),
    *((("claims, no quota", ()),) if CLAIMS else ()),
    ("--manage-quotas", ("--manage-quotas",)),
)
RACE_CREATES = 200


def lb_service(name: str) -> dict[str, Any]:
    body = load_balancer(name)
    # No node ports: thousands of LoadBalancers would use up the 2,768 of the range.
    body["spec"]["allocateLoadBalancerNodePorts"] = False
    return body


def ingress(name: str) -> dict[str, Any]:
    """An Ingress with a host of its own (a new key for unique-ingress-hosts)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"ingressClassName": "nginx", "rules": [{
                "host": f"{name}.bench.example.com", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix", "backend": {"service": {
                        "name": "web", "port": {"number": 80}}}}]}}]}}


PART_KINDS = (
    ("LoadBalancer Service", "/api/v1/namespaces/{namespace}/services", lb_service),
    ("Ingress, new host", "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
     ingress),
)


def apiserver_writes(plane: ControlPlane) -> dict[str, float]:
    """Every client's write requests so far, by resource and verb (the API server's own
    ``apiserver_request_total``)."""
    from prometheus_client.parser import text_string_to_metric_families

    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(plane.workdir / "pki" / "admin.crt",
                            plane.workdir / "pki" / "admin.key")
    with urllib.request.urlopen(f"{plane.server}/metrics", timeout=30,
                                context=context) as answer:
        text = answer.read().decode()
    writes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "apiserver_request_total" or labels.get("verb") not in WRITE_VERBS:
                continue
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += f"/{labels['subresource']}"
            key = f"{resource} {labels['verb']}"
            writes[key] = writes.get(key, 0.0) + sample.value
    return writes


def histogram_sums(text: str, family_name: str, **labels: str) -> tuple[float, float]:
    """(sum, count) of histogram ``family_name`` over its samples matching ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != family_name:
            continue
        for sample in family.samples:
            if any(sample.labels.get(key) != value for key, value in labels.items()):
                continue
            if sample.name == f"{family_name}_sum":
                total += sample.value
            elif sample.name == f"{family_name}_count":
                count += sample.value
    return total, count


def apiserver_metrics(plane: ControlPlane) -> str:
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(plane.workdir / "pki" / "admin.crt",
                            plane.workdir / "pki" / "admin.key")
    with urllib.request.urlopen(f"{plane.server}/metrics", timeout=30,
                                context=context) as answer:
        return str(answer.read().decode())


def server_metrics(server: Server) -> str:
    with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/metrics", timeout=10,
                                context=ssl._create_unverified_context()) as answer:
        return str(answer.read().decode())


class HopSplit:
    """Where a series' added time goes, from both sides' own histograms: the API server's
    time per call to the webhook (``apiserver_admission_webhook_admission_duration_seconds``
    for its validating webhook: its request encoding, the HTTP round trip, the answer's
    decoding) and the webhook's own time per decision (``edgewarden_decision_duration_
    seconds``, parse to rendered answer); the call's time less the decision's is the HTTP,
    TLS and scheduling between the two processes. The webhook that does nothing keeps no
    histogram: its row has the call's time only."""

    def __init__(self, webhook: str = "validate.edgewarden.dev") -> None:
        self.webhook = webhook
        self.call = [0.0, 0.0]
        self.decision = [0.0, 0.0]
        self._before: tuple[tuple[float, float], tuple[float, float]] | None = None

    def start(self, plane: ControlPlane, server: Server | None) -> None:
        self._before = (self._call(plane), self._decision(server))

    def stop(self, plane: ControlPlane, server: Server | None) -> None:
        assert self._before is not None
        (call_sum, call_count), (decision_sum, decision_count) = self._before
        now_call, now_decision = self._call(plane), self._decision(server)
        self.call[0] += now_call[0] - call_sum
        self.call[1] += now_call[1] - call_count
        self.decision[0] += now_decision[0] - decision_sum
        self.decision[1] += now_decision[1] - decision_count

    def calls(self, plane: ControlPlane) -> float:
        """How many times the API server has called this webhook so far."""
        return self._call(plane)[1]

    def _call(self, plane: ControlPlane) -> tuple[float, float]:
        return histogram_sums(apiserver_metrics(plane),
                              "apiserver_admission_webhook_admission_duration_seconds",
                              name=self.webhook)

    @staticmethod
    def _decision(server: Server | None) -> tuple[float, float]:
        if server is None:
            return 0.0, 0.0
        return histogram_sums(server_metrics(server), "edgewarden_decision_duration_seconds",
                              endpoint="validate")

    def figures(self) -> dict[str, float]:
        call = self.call[0] / self.call[1] * 1000 if self.call[1] else 0.0
        if not self.decision[1]:
            return {"apiserver_call_mean_ms": round(call, 3)}
        decision = self.decision[0] / self.decision[1] * 1000
        return {"apiserver_call_mean_ms": round(call, 3),
                "webhook_decision_mean_ms": round(decision, 3),
                "between_mean_ms": round(call - decision, 3)}


def timed_creates(plane: ControlPlane, path: str, make: Any, count: int,
                  prefix: str) -> list[float]:
    api = Api(plane)
    samples = []
    for index in range(count):
        body = make(f"{prefix}-{index}")
        started = time.perf_counter()
        status = api.post(path, body)
        samples.append(time.perf_counter() - started)
        if status != 201:
            raise RuntimeError(f"create {prefix}-{index}: HTTP {status}")
    return samples


def measure_parts(workdir: Path, figures: Figures, args: argparse.Namespace) -> None:
    """Part 3 on a control plane of its own (with the quota controller)."""
    import shutil

    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(haproxy, os.X_OK):
        raise SystemExit("part 3 needs haproxy (Debian's package; scripts/test installs it)")
    plane = ControlPlane(locate(), workdir / "kube-parts", audit_policy=NO_AUDIT)
    plane.start()
    try:
        service_account = install_rbac(plane)
        certificates = WebhookCertificates.generate(workdir / "replica-tls")
        figures.parts_replicas = args.replicas
        figures.parts_claims = CLAIMS
        samples: dict[tuple[str, str], list[float]] = {}
        writes: dict[tuple[str, str], dict[str, float]] = {}
        seconds: dict[tuple[str, str], float] = {}
        sets = 0
        for block in range(args.part_blocks):
            for configuration, serve_args in PART_CONFIGS:
                print(f"part 3, block {block + 1}/{args.part_blocks}: {configuration}...",
                      flush=True)
                replicas: ReplicaSet | None = None
                if serve_args is not None:
                    sets += 1
                    replicas = ReplicaSet(plane, workdir / f"parts-{sets}", certificates,
                                          service_account, count=args.replicas,
                                          serve_args=serve_args, haproxy=haproxy).start()
                try:
                    namespace = _part_namespace(plane, replicas, serve_args or ())
                    for kind, path_template, make in PART_KINDS:
                        path = path_template.format(namespace=namespace)
                        tag = f"b{block}-{uuid.uuid4().hex[:6]}"  # hosts never repeat
                        timed_creates(plane, path, make, 10, f"warm-{tag}")
                        before, started = apiserver_writes(plane), time.monotonic()
                        got = timed_creates(plane, path, make, args.part_creates, f"m-{tag}")
                        took, after = time.monotonic() - started, apiserver_writes(plane)
                        cell = (configuration, kind)
                        samples.setdefault(cell, []).extend(got)
                        seconds[cell] = seconds.get(cell, 0.0) + took
                        total = writes.setdefault(cell, {})
                        for key, value in after.items():
                            delta = value - before.get(key, 0.0)
                            if delta:
                                total[key] = total.get(key, 0.0) + delta
                finally:
                    if replicas is not None:
                        replicas.stop()
        for (configuration, kind), got in samples.items():
            per_create = {key: round(value / len(got), 3) for key, value in
                          sorted(writes[(configuration, kind)].items(), key=lambda kv: -kv[1])}
            figures.parts.append(PartFigures(configuration, kind, len(got), percentiles(got),
                                             per_create, round(seconds[(configuration, kind)], 1)))
        measure_races(plane, workdir, certificates, service_account, haproxy, figures, args)
    finally:
        plane.stop()


def _part_namespace(plane: ControlPlane, replicas: ReplicaSet | None,
                    serve_args: tuple[str, ...]) -> str:
    """A fresh namespace whose LoadBalancer cap no series reaches (its quota enforced when
    the replicas keep quotas)."""
    annotations = {LB_CAP_ANNOTATION: str(HUGE_CAP)}
    if replicas is None:
        name = f"plain-{time.monotonic_ns()}"
        plane.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "annotations": annotations}}))
        return name
    name = replicas.namespace(annotations=annotations)
    if "--manage-quotas" in serve_args:
        replicas.wait_for_quotas({name: HUGE_CAP})
    return name


def measure_races(plane: ControlPlane, workdir: Path, certificates: WebhookCertificates,
                  service_account: Path, haproxy: str, figures: Figures,
                  args: argparse.Namespace) -> None:
    """The race of tests/replicas/test_loadbalancer_caps.py, ``--race-rounds`` times in each
    of RACE_CONFIGS: LoadBalancers left over the caps."""
    for index, (configuration, serve_args) in enumerate(RACE_CONFIGS):
        replicas = ReplicaSet(plane, workdir / f"race-{index}", certificates,
                              service_account, count=args.replicas, serve_args=serve_args,
                              haproxy=haproxy).start()
        try:
            for round_ in range(args.race_rounds):
                print(f"race {round_ + 1}/{args.race_rounds}, {configuration}...", flush=True)
                caps = {replicas.namespace(annotations={LB_CAP_ANNOTATION: str(cap)}): cap
                        for cap in RACE_CAPS}
                if "--manage-quotas" in serve_args:
                    replicas.wait_for_quotas(caps)
                namespaces = list(caps)
                create_concurrently(plane, [
                    (namespaces[i % len(namespaces)], lb_service(f"race-{round_}-{i}"))
                    for i in range(RACE_CREATES)])
                counts = count_load_balancers(plane, namespaces)
                figures.races.append(RaceRound(configuration, RACE_CAPS,
                                               [counts[n] for n in namespaces]))
        finally:
            replicas.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=2000, help="per series")
    parser.add_argument("--skip-population", action="store_true",
                        help="only the latency figures")
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=600.0,
                        help="seconds for creating the population")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-parts", action="store_true",
                        help="leave out part 3 (what each part adds; needs haproxy)")
    parser.add_argument("--only-parts", action="store_true", help="part 3 only")
    parser.add_argument("--edgewarden", metavar="EXECUTABLE", default=EDGEWARDEN,
                        help="the edgewarden executable measured (default: the venv's, the "
                             "working tree; benchmarks/all.py passes the build the image ships)")
    parser.add_argument("--baseline", metavar="EDGEWARDEN",
                        help="part 1: also register this edgewarden executable (another "
                             "build's) for a series of its own in the same rotation: a "
                             "before/after measured side by side")
    parser.add_argument("--replicas", type=int, default=3, help="part 3: serve replicas")
    parser.add_argument("--part-creates", type=int, default=150,
                        help="part 3: creates per kind, configuration and block")
    parser.add_argument("--part-blocks", type=int, default=2,
                        help="part 3: rounds over the configurations")
    parser.add_argument("--race-rounds", type=int, default=3,
                        help="part 3: 200-create races per way of keeping the cap")
    args = parser.parse_args()
    if args.only_parts:
        workdir = Path(tempfile.mkdtemp(prefix="edgewarden-bench-"))
        binaries = locate()
        figures = Figures(machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
                          kubernetes=binaries.versions.split("\n")[0], creates=0)
        measure_parts(workdir, figures, args)
        report(figures)
        return

    workdir = Path(tempfile.mkdtemp(prefix="edgewarden-bench-"))
    binaries = locate()
    plane = ControlPlane(binaries, workdir / "kube", controller_manager=False,
                         audit_policy=NO_AUDIT)
    plane.start()
    try:
        figures = Figures(machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
                          kubernetes=binaries.versions.split("\n")[0], creates=args.creates)
        server = Server(plane, workdir, executable=args.edgewarden)
        server.start()
        figures.rss_mib_empty_cluster = server.rss_mib()
        baseline: Server | None = None
        if args.baseline:
            baseline = Server(plane, workdir / "baseline", executable=args.baseline)
            baseline.start()
            figures.baseline = args.baseline

        plane.kubectl("create", "namespace", "bench")
        # Each series' label selects who judges its creates (None: no webhook).
        series: dict[str, dict[str, str] | None] = {"plain": None, "judged": JUDGED,
                                                    "idle": IDLE_JUDGED}
        judged_split = HopSplit()
        splits = {"judged": judged_split,
                  "idle": HopSplit(f"{IdleWebhook.NAME}.{judged_split.webhook}")}
        idle = IdleWebhook(server)
        idle.start()
        server.register(selector=JUDGED)
        idle.register(selector=IDLE_JUDGED)
        wait_until_called(plane, expected=True, labels=JUDGED)
        wait_until_counted(plane, splits["idle"], IDLE_JUDGED)
        if baseline is not None:
            series["baseline"] = BASELINE_JUDGED
            splits["baseline"] = HopSplit(f"{BASELINE}.{judged_split.webhook}")
            baseline.register(selector=BASELINE_JUDGED, renamed=BASELINE)
            wait_until_counted(plane, splits["baseline"], BASELINE_JUDGED)
        print(f"{args.creates} creates of each of {len(series)} series (not judged, judged by "
              f"edgewarden, by a webhook that does nothing"
              f"{', by the baseline' if baseline else ''}), one of each in turn...", flush=True)
        builds = {"judged": server, "idle": None, "baseline": baseline}
        for tag, split in splits.items():
            split.start(plane, builds[tag])
        samples = interleaved_latencies(plane, "bench", args.creates, series)
        for tag, split in splits.items():
            split.stop(plane, builds[tag])
        plain, judged = samples["plain"], samples["judged"]
        figures.with_idle_webhook_ms = percentiles(samples["idle"])
        server.unregister()
        idle.unregister()
        idle.process.stop()
        figures.without_webhook_ms = percentiles(plain)
        figures.with_webhook_ms = percentiles(judged)
        figures.hop_split = {tag: split.figures() for tag, split in splits.items()}
        if baseline is not None:
            figures.with_baseline_ms = percentiles(samples["baseline"])
            baseline.unregister(renamed=BASELINE)
            baseline.process.stop()
        server.process.stop()
        if not args.skip_population:
            measure_population(plane, server, figures, args)
    finally:
        plane.stop()
    if not args.skip_parts:
        measure_parts(workdir, figures, args)
    report(figures)


def measure_population(plane: ControlPlane, server: Server, figures: Figures,
                       args: argparse.Namespace) -> None:
    print(f"population: up to {args.namespaces} namespaces, {args.services} services, "
          f"{args.budget:.0f} s budget...", flush=True)
    (figures.namespaces, figures.services,
     figures.population_seconds) = populate(plane, args.namespaces, args.services,
                                            args.budget, args.workers)
    figures.population_budget_seconds = args.budget
    print(f"  made {figures.namespaces} namespaces and {figures.services} services in "
          f"{figures.population_seconds:.0f} s; starting edgewarden serve...", flush=True)
    figures.start_to_ready_seconds = round(server.start(), 2)
    figures.cpu_seconds_to_ready = server.cpu_seconds()
    figures.synced_after_seconds = server.sync_times()
    figures.rss_mib_synced = server.rss_mib()
    server.process.stop()


def report(figures: Figures) -> None:
    """A table on stdout, the figures as JSON in benchmarks/results/."""
    rows: list[tuple[str, str]] = []
    if figures.with_webhook_ms:
        rows += [
            ("Service CREATE, not judged (no webhook call)",
             _latency(figures.without_webhook_ms)),
            ("Service CREATE, judged by edgewarden", _latency(figures.with_webhook_ms)),
            ("added by the webhook (p50 / p99)",
             f"{figures.with_webhook_ms['p50'] - figures.without_webhook_ms['p50']:.2f} / "
             f"{figures.with_webhook_ms['p99'] - figures.without_webhook_ms['p99']:.2f} ms"),
            ("serve RSS, empty cluster", f"{figures.rss_mib_empty_cluster:.0f} MiB"),
        ]
    if figures.with_idle_webhook_ms:
        idle, judged = figures.with_idle_webhook_ms, figures.with_webhook_ms
        rows += [
            ("Service CREATE, judged by a webhook that does nothing", _latency(idle)),
            ("added by a webhook that does nothing (p50 / p99)",
             f"{idle['p50'] - figures.without_webhook_ms['p50']:.2f} / "
             f"{idle['p99'] - figures.without_webhook_ms['p99']:.2f} ms"),
            ("edgewarden's own part (judged less nothing, p50 / p99)",
             f"{judged['p50'] - idle['p50']:.2f} / {judged['p99'] - idle['p99']:.2f} ms"),
        ]
    for tag, split in figures.hop_split.items():
        if "between_mean_ms" not in split:
            rows.append(("the webhook that does nothing: per call, API server",
                         f"{split['apiserver_call_mean_ms']:.2f} ms (mean)"))
            continue
        who = "edgewarden" if tag == "judged" else "the baseline"
        rows.append((f"{who}: per call, API server / decision / between",
                     f"{split['apiserver_call_mean_ms']:.2f} / "
                     f"{split['webhook_decision_mean_ms']:.2f} / "
                     f"{split['between_mean_ms']:.2f} ms (means)"))
    if figures.with_baseline_ms:
        rows += [
            ("Service CREATE, judged by the baseline", _latency(figures.with_baseline_ms)),
            ("added by the baseline (p50 / p99)",
             f"{figures.with_baseline_ms['p50'] - figures.without_webhook_ms['p50']:.2f} / "
             f"{figures.with_baseline_ms['p99'] - figures.without_webhook_ms['p99']:.2f} ms"),
        ]
    if figures.namespaces:
        rows += [
            ("population", f"{figures.namespaces} Namespaces, {figures.services} Services "
                           f"(made in {figures.population_seconds:.0f} s)"),
            ("serve: start to ready (synced)", f"{figures.start_to_ready_seconds:.1f} s"),
            ("serve: CPU from start to ready", f"{figures.cpu_seconds_to_ready:.1f} s"),
            ("serve: cache synced after", ", ".join(
                f"{kind} {seconds:.1f} s"
                for kind, seconds in figures.synced_after_seconds.items())),
            ("serve RSS, synced", f"{figures.rss_mib_synced:.0f} MiB"),
        ]
    print(f"\n{figures.kubernetes}, {figures.machine}, {figures.creates} creates per series")
    if rows:
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
    if figures.parts:
        report_parts(figures)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"apiserver-{datetime.now():%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(asdict(figures), indent=2))
    print(f"\n(JSON: {out.relative_to(ROOT)})")


def report_parts(figures: Figures) -> None:
    claims = "with claims" if figures.parts_claims else "no claims in this build"
    print(f"\nWhat each part adds to a CREATE ({figures.parts_replicas} replicas behind "
          f"HAProxy; {claims}; one client, one create at a time):")
    header = (f"  {'CREATE':<22} {'configuration':<24} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'+p50':>7} {'+p99':>7}  writes per create (every client; leases apart)")
    print(header)
    baseline = {p.kind: p for p in figures.parts if p.configuration == PART_CONFIGS[0][0]}
    for part in figures.parts:
        base = baseline[part.kind].latency_ms
        counted = {k: v for k, v in part.writes_per_create.items()
                   if k.split("/")[0].split()[0] not in TIME_BASED and v >= 0.01}
        leases = sum(v for k, v in part.writes_per_create.items()
                     if k.split("/")[0].split()[0] in TIME_BASED)
        detail = ", ".join(f"{k} {v:.2f}" for k, v in counted.items())
        lease_rate = leases * part.creates / part.seconds if part.seconds else 0.0
        print(f"  {part.kind:<22} {part.configuration:<24} {part.latency_ms['p50']:>8.2f} "
              f"{part.latency_ms['p99']:>8.2f} {part.latency_ms['p50'] - base['p50']:>7.2f} "
              f"{part.latency_ms['p99'] - base['p99']:>7.2f}  {sum(counted.values()):.2f}: "
              f"{detail}; leases {lease_rate:.1f}/s")
    if figures.races:
        print(f"\n{RACE_CREATES} concurrent LoadBalancer creates over {len(RACE_CAPS)} "
              f"namespaces (caps {RACE_CAPS}), LoadBalancers left over the caps per round:")
    for configuration, _ in RACE_CONFIGS:
        rounds = [r for r in figures.races if r.configuration == configuration]
        if rounds:
            print(f"  {configuration:<48} {[r.overshoot for r in rounds]} "
                  f"(created per namespace: {[r.created for r in rounds]})")


def _latency(ms: dict[str, float]) -> str:
    return f"p50 {ms['p50']:.2f} ms, p90 {ms['p90']:.2f} ms, p99 {ms['p99']:.2f} ms"


if __name__ == "__main__":
    main()
