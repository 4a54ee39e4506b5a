"""An API server that blips: the controllers outlive it. A connection cut mid-answer (urllib3's
ProtocolError, neither an ApiException nor an OSError) and a restart of the API server leave
leader election, the Policy and PolicyException objects and the continuous audit working: a
PolicyException deleted after the outage stops exempting, reports are written again, and
every failure is logged and counted, none silent."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.kubeapi import KubeApi
from tests.kubeapi.resources import CLAIMS
from tests.support import eventually, service

from .conftest import Served, ServeFactory
from .test_exception_objects import IN_PRODUCTION, admit_gateway, legacy_exception

HOUR = 3600.0


def background(served: Served) -> dict[str, Any]:
    return dict(served.server.get("/readyz").json()["background"])


def test_connections_cut_mid_answer_kill_no_controller(
    crd_api: KubeApi, serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    crd_api.add_resource(CLAIMS)  # the claims controller must outlive the cuts too
    served = serve(crd_api, audit_interval_seconds=HOUR, exception_rules=IN_PRODUCTION)
    eventually(lambda: served.controllers.elector.leading, what="leadership")
    # Every Lease and PolicyException request is cut without an answer, for a while.
    crd_api.hang_up(resource="leases")
    crd_api.hang_up(resource="policyexceptions")
    crd_api.drop_watches()
    eventually(lambda: not served.controllers.elector.leading, timeout=20,
               what="leadership lost while the Lease cannot be renewed")
    crd_api.clear_refusals()

    eventually(lambda: served.controllers.elector.leading, timeout=20,
               what="leadership again once the API answers")
    crd_api.create(legacy_exception())
    eventually(lambda: admit_gateway(served)["allowed"], timeout=20,
               what="an exception created after the cuts to be followed")
    tasks = background(served)
    assert {"leader-election", "cluster-objects", "continuous-audit", "claims"} <= set(tasks)
    assert all(task["running"] for task in tasks.values()), tasks
    assert served.server.get("/readyz").status_code == 200


def test_a_deleted_exception_stops_exempting_after_an_api_server_restart(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.add_resource(CLAIMS)
    crd_api.create(service(name="admin", namespace="production", type="NodePort"))
    served = serve(crd_api, audit_interval_seconds=HOUR, exception_rules=IN_PRODUCTION)
    crd_api.create(legacy_exception())
    eventually(lambda: admit_gateway(served)["allowed"], what="the exception to exempt")
    audit = served.controllers.reports
    assert audit is not None
    eventually(lambda: audit.runs, what="the first audit")

    crd_api.stop()  # the API server is down for 3 s: refused connections, cut watches
    time.sleep(3)
    crd_api.start()  # same port, same objects

    crd_api.delete("policyexceptions", "legacy-gateway", namespace="production")
    # 10 s after the API server is back at most (backoff is capped at 8 s with jitter).
    eventually(lambda: not admit_gateway(served)["allowed"], timeout=10,
               what="the deleted exception to stop exempting")
    # PolicyReports are written again: a new violation shows up in the next audit.
    crd_api.delete("policyreports", "edgewarden-production", namespace="production")
    runs = audit.runs
    audit.trigger()
    eventually(lambda: audit.runs > runs and crd_api.exists(
        "policyreports", "edgewarden-production", namespace="production"), timeout=30,
        what="the report to be written again after the outage")
    tasks = background(served)
    assert all(task["running"] for task in tasks.values()), tasks
    eventually(lambda: served.server.get("/readyz").status_code == 200, timeout=15,
               what="ready again")
