"""Soak: `edgewarden serve` as the webhook of a real kube-apiserver under mixed load for 10
minutes, while every minute the API server restarts, the policy files change (a reload) and
the serving certificate is rotated (a new leaf from the same CA, swapped in atomically).

Load, all the time:
* Service creates through the API server (ClusterIP in dev, NodePort refused in production,
  LoadBalancers patched internal) from two threads: what users see;
* AdmissionReviews posted straight to the webhook from two threads: what the webhook answers
  even while the API server is down (the API server is the usual caller, so this is the
  only way to see the webhook's own failures during the restart).

Reported: the webhook's failed answers (no HTTP 200 for a direct review; for creates through
the API server, the ones refused with "failed calling webhook"; target 0 for both), API
server requests that failed because the API server was down (not ours, shown apart), the
longest stale window (the largest age of the watch cache seen, polled twice a second from
the cache's own age gauge in /metrics), the longest run of /readyz 503, and the server's RSS
at start and end.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2     # a quick look

Figures only; nothing here is asserted by the tests. JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from kube.binaries import locate  # noqa: E402
from kube.controlplane import ControlPlane  # noqa: E402
from kube.net import free_port  # noqa: E402
from kube.processes import ManagedProcess  # noqa: E402
from kube.wait import until  # noqa: E402

from webhook.certs.files import write_pair  # noqa: E402
from webhook.certs.issue import issue_serving, load_key_pair  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EDGEWARDEN = str(Path(sys.executable).with_name("edgewarden"))
NO_AUDIT = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}
SNI = "edgewarden.edgewarden.svc"


@dataclass
class Figures:
    minutes: float
    direct_reviews: int = 0
    direct_failed: int = 0
    creates: int = 0
    creates_webhook_failed: int = 0
    creates_api_down: int = 0
    creates_denied_by_policy: int = 0
    restarts: int = 0
    reloads: int = 0
    rotations: int = 0
    longest_stale_seconds: float = 0.0
    longest_unready_seconds: float = 0.0
    rss_mib_start: float = 0.0
    rss_mib_end: float = 0.0
    supervisor_restarts: dict[str, float] = field(default_factory=dict)
    webhook_failure_samples: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, plane: ControlPlane, workdir: Path, figures: Figures) -> None:
        self.plane = plane
        self.workdir = workdir
        self.figures = figures
        self.port = free_port()
        self.tls = workdir / "tls"
        self.policies = workdir / "policies"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(plane.kubeconfig),
               "HOME": str(workdir)}
        subprocess.run([EDGEWARDEN, "certs", "generate", "--out", str(self.tls),
                        "--host", "127.0.0.1"], check=True, env=env, capture_output=True)
        subprocess.run(["cp", "-r", str(ROOT / "policies"), str(self.policies)], check=True)
        self.process = ManagedProcess("edgewarden serve", [
            EDGEWARDEN, "serve", "--policies", str(self.policies), "--host", "127.0.0.1",
            "--port", str(self.port), "--tls-cert", str(self.tls / "tls.crt"),
            "--tls-key", str(self.tls / "tls.key"), "--audit-log", str(workdir / "audit.log"),
            "--no-cluster-objects", "--log-level", "info"], workdir / "serve.log", env=env,
            cwd=ROOT)
        self.context = ssl.create_default_context(cafile=str(self.tls / "ca.crt"))
        self.context.check_hostname = False  # the leaf names 127.0.0.1 too; SNI is not set

    # ---- the server ----

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", timeout=5,
                                        context=self.context) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError:
            return 0, {}

    def metrics(self) -> str:
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/metrics", timeout=5,
                                    context=self.context) as answer:
            return str(answer.read().decode())

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return round(int(match.group(1)) / 1024, 1) if match else 0.0

    def register(self) -> None:
        rendered = subprocess.run(
            [EDGEWARDEN, "webhook-config", "--policies", str(self.policies),
             "--url", f"https://127.0.0.1:{self.port}", "--ca-bundle", str(self.tls / "ca.crt")],
            check=True, capture_output=True, text=True).stdout
        self.plane.kubectl("apply", "-f", "-", input=rendered)

    # ---- load ----

    def direct_reviews(self) -> None:
        import http.client

        body_of = lambda: json.dumps({  # noqa: E731
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": str(uuid.uuid4()), "operation": "CREATE",
                        "kind": {"group": "", "version": "v1", "kind": "Service"},
                        "resource": {"group": "", "version": "v1", "resource": "services"},
                        "namespace": "soak-prod", "name": "direct",
                        "userInfo": {"username": "soak"},
                        "object": {"apiVersion": "v1", "kind": "Service",
                                   "metadata": {"name": "direct", "namespace": "soak-prod"},
                                   "spec": {"type": "NodePort",
                                            "ports": [{"port": 80}]}}}}).encode()
        connection: http.client.HTTPSConnection | None = None
        while not self.stop.is_set():
            ok, why = False, ""
            try:
                if connection is None:
                    connection = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                             context=self.context, timeout=10)
                connection.request("POST", "/validate", body=body_of(),
                                   headers={"content-type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                ok, why = answer.status == 200, f"HTTP {answer.status}"
            except Exception as error:  # counted, never fatal
                why = f"{type(error).__name__}: {error}"
                if connection is not None:
                    connection.close()
                connection = None
            with self.lock:
                self.figures.direct_reviews += 1
                if not ok:
                    self.figures.direct_failed += 1
                    if len(self.figures.webhook_failure_samples) < 10:
                        self.figures.webhook_failure_samples.append(f"direct: {why}")
            self.stop.wait(0.01)

    def creates(self, worker: int) -> None:
        kinds = [("soak-dev", "ClusterIP"), ("soak-prod", "NodePort"),
                 ("soak-dev", "LoadBalancer")]
        index = 0
        while not self.stop.is_set():
            namespace, kind = kinds[index % len(kinds)]
            index += 1
            name = f"s{worker}-{index}"
            result = self.plane.kubectl(
                "create", "service", kind.lower(), name, "--tcp=80:8080", "-n", namespace,
                "--dry-run=server", check=False, timeout=60)
            text = result.stderr
            with self.lock:
                self.figures.creates += 1
                if result.returncode == 0:
                    pass
                elif "failed calling webhook" in text or "context deadline" in text:
                    self.figures.creates_webhook_failed += 1
                    if len(self.figures.webhook_failure_samples) < 10:
                        self.figures.webhook_failure_samples.append(text.strip()[:300])
                elif "denied the request" in text:
                    self.figures.creates_denied_by_policy += 1
                else:  # connection refused, apiserver starting: not the webhook
                    self.figures.creates_api_down += 1
            self.stop.wait(0.05)

    def watch_readiness(self) -> None:
        unready_since: float | None = None
        while not self.stop.is_set():
            status, _ = self.readyz()
            now = time.monotonic()
            if status != 200:
                unready_since = unready_since or now
                self.figures.longest_unready_seconds = max(
                    self.figures.longest_unready_seconds, round(now - unready_since, 1))
            else:
                unready_since = None
            self.stop.wait(0.5)

    def cache_ages(self) -> None:
        """The cache's age per kind, from /metrics, twice a second (a stale window)."""
        pattern = re.compile(r'^edgewarden_cluster_cache_last_event_age\{[^}]*\} (\S+)$',
                             re.M)
        while not self.stop.is_set():
            try:
                for value in pattern.findall(self.metrics()):
                    self.figures.longest_stale_seconds = max(
                        self.figures.longest_stale_seconds, round(float(value), 1))
            except (OSError, ValueError):
                pass
            self.stop.wait(0.5)

    # ---- disturbances ----

    def restart_apiserver(self) -> None:
        self.plane.stop_apiserver()
        time.sleep(3)
        self.plane.start_apiserver()
        self.figures.restarts += 1

    def reload_policies(self) -> None:
        # An atomic edit (write a temporary file, rename): a new message on one policy.
        target = next(p for p in sorted(self.policies.glob("*.yaml"))
                      if "nodeport" in p.name)
        text = target.read_text()
        marker = f"# soak reload {time.time()}\n"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(re.sub(r"^# soak reload .*\n", "", text, flags=re.M) + marker)
        temporary.rename(target)
        self.figures.reloads += 1

    def rotate_certificate(self) -> None:
        ca = load_key_pair((self.tls / "ca.crt").read_bytes(), (self.tls / "ca.key").read_bytes())
        leaf = issue_serving(ca, service="edgewarden", namespace="edgewarden",
                             hosts_extra=("127.0.0.1",))
        write_pair(self.tls / "tls.crt", self.tls / "tls.key", leaf)
        self.figures.rotations += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    figures = Figures(minutes=args.minutes)
    workdir = Path(tempfile.mkdtemp(prefix="edgewarden-soak-"))
    plane = ControlPlane(locate(), workdir / "kube", controller_manager=False,
                         audit_policy=NO_AUDIT)
    plane.start()
    soak = Soak(plane, workdir, figures)
    try:
        for name, labels in (("soak-dev", "environment=development"),
                             ("soak-prod", "environment=production")):
            plane.kubectl("create", "namespace", name)
            plane.kubectl("label", "namespace", name, labels)
        soak.process.start()
        until(lambda: soak.readyz()[0] == 200, "edgewarden serve to be ready", 120,
              interval=0.1, check=soak.process.check_alive)
        soak.register()
        figures.rss_mib_start = soak.rss_mib()
        threads = [threading.Thread(target=soak.direct_reviews, daemon=True) for _ in range(2)]
        threads += [threading.Thread(target=soak.creates, args=(i,), daemon=True)
                    for i in range(2)]
        threads += [threading.Thread(target=soak.watch_readiness, daemon=True),
                    threading.Thread(target=soak.cache_ages, daemon=True)]
        for thread in threads:
            thread.start()
        end = time.monotonic() + args.minutes * 60
        minute = 0
        while time.monotonic() < end:
            time.sleep(min(60.0, max(0.0, end - time.monotonic())) / 3)
            minute += 1
            step = minute % 3
            # spread over each minute: a restart, then a reload, then a rotation
            if step == 1:
                soak.restart_apiserver()
            elif step == 2:
                soak.reload_policies()
            else:
                soak.rotate_certificate()
            print(f"{datetime.now():%H:%M:%S} {asdict(figures)}", flush=True)
        soak.stop.set()
        for thread in threads:
            thread.join(70)
        figures.rss_mib_end = soak.rss_mib()
        restarts = re.findall(r'^edgewarden_background_restarts_total\{task="([^"]+)"\} (\S+)$',
                              soak.metrics(), re.M)
        figures.supervisor_restarts = {task: float(v) for task, v in restarts}
    finally:
        soak.stop.set()
        soak.process.stop()
        plane.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(asdict(figures), indent=2))
    print(json.dumps(asdict(figures), indent=2))
    print(f"written to {out.relative_to(ROOT)}; host {os.uname().nodename}")


if __name__ == "__main__":
    main()
