"""The server with its controllers against the API double serving edgewarden's CRDs: the
Policy and PolicyException objects, the Lease, the PolicyReports. Time is an injected clock
(exception expiry, loadedAt); the loops poll fast; nothing sleeps for a guessed time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admission.harness import RunningServer, base_settings, start_server
from tests.kubeapi import DEFAULT_RESOURCES, EDGEWARDEN_RESOURCES, KubeApi
from tests.support import api_client, eventually, namespace, use_kubeconfig, write_kubeconfig
from tests.support.clock import FakeClock
from webhook.certs.files import GeneratedCertificates
from webhook.cluster.kube_informer import InformerSettings
from webhook.controllers.leader import LeaderSettings
from webhook.controllers.runner import Controllers, Timing
from webhook.serve.build import Runtime
from webhook.serve.root import attach_controllers

REPO = Path(__file__).parents[2]
FAST_INFORMERS = InformerSettings(watch_timeout_seconds=10, connect_timeout=2.0,
                                  list_timeout=5.0, backoff_initial=0.02, backoff_max=0.2)
FAST = Timing(retry=0.05, informer=FAST_INFORMERS,
              leader=LeaderSettings(namespace="edgewarden", lease_duration=2.0,
                                    renew_deadline=1.0, retry_period=0.05))




@pytest.fixture
def crd_api() -> Iterator[KubeApi]:
    """The double, serving edgewarden's CRDs and the PolicyReport CRDs too."""
    with KubeApi(resources=(*DEFAULT_RESOURCES, *EDGEWARDEN_RESOURCES)) as api:
        for name, labels in (("production", {"environment": "production"}),
                             ("dev", {"environment": "development"})):
            api.create(namespace(name=name, labels=labels))
        yield api


@dataclasses.dataclass
class Served:
    server: RunningServer
    controllers: Controllers
    clock: FakeClock
    api: KubeApi

    def status(self, policy: str) -> dict[str, Any]:
        return dict(self.api.get("policies", policy).get("status") or {})

    def serving(self) -> list[str]:
        return sorted(self.server.get("/readyz").json()["policies"]["serving"])


ServeFactory = Callable[..., Served]


@pytest.fixture
def serve(certificates: GeneratedCertificates, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[ServeFactory]:
    """``serve(api, policies=..., **settings)``: the real server reading ``api``, with the
    controllers attached as ``edgewarden serve`` attaches them."""
    running: list[RunningServer] = []

    def start(api: KubeApi, *, policies: Path = REPO / "policies", clock: FakeClock | None = None,
              ready: bool = True, **overrides: Any) -> Served:
        kubeconfig = write_kubeconfig(tmp_path / f"kubeconfig-{len(running)}", server=api.url,
                                      ca_pem=api.ca_pem)
        use_kubeconfig(monkeypatch, kubeconfig)
        clock = clock or FakeClock()
        attached: list[Controllers] = []

        def prepare(runtime: Runtime) -> None:
            controllers = attach_controllers(runtime, api=api_client(kubeconfig), clock=clock,
                                             timing=FAST)
            assert controllers is not None
            attached.append(controllers)

        settings = base_settings(certificates, tmp_path, cluster_state=None,
                                 policies=(policies,), **overrides)
        server = start_server(settings, certificates.ca_file, prepare, clock=clock)
        running.append(server)
        if ready:  # what the API server waits for before it calls the webhook
            eventually(lambda: server.get("/readyz").status_code == 200, what="/readyz")
        return Served(server, attached[0], clock, api)

    yield start
    for server in running:
        server.stop()
