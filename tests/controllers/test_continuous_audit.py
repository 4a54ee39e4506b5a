"""The continuous audit: the leading replica keeps one PolicyReport per namespace (split at
the size bound) and a ClusterPolicyReport equal to what the cache holds, deletes the ones
whose findings are gone, and exports edgewarden_existing_violations."""

from __future__ import annotations

import json
from typing import Any

from tests.kubeapi import KubeApi
from tests.support import eventually, namespace, service

from .conftest import Served, ServeFactory

HOUR = 3600.0


def reports(api: KubeApi, ns: str | None = None) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in api.objects("policyreports", namespace=ns)}


def results(report: dict[str, Any], name: str) -> dict[str, str]:
    """policy -> result of the object ``name`` in ``report``."""
    return {r["policy"]: r["result"] for r in report["results"]
            if r["resources"][0]["name"] == name}


def audited(served: Served, after: int) -> int:
    """Ask for an audit and wait for it: the number of runs once it is done."""
    audit = served.controllers.reports
    assert audit is not None
    audit.trigger()
    return eventually(lambda: audit.runs > after and audit.runs, timeout=60,
                      what="an audit run")


def test_reports_appear_and_follow_a_fix(crd_api: KubeApi, serve: ServeFactory) -> None:
    crd_api.create(service(name="admin", namespace="production", type="NodePort"))
    crd_api.create(service(name="web", namespace="dev"))
    served = serve(crd_api, audit_interval_seconds=HOUR)
    runs = eventually(lambda: served.controllers.reports and served.controllers.reports.runs,
                      what="the first audit (on becoming leader)")
    production = reports(crd_api, "production")["edgewarden-production"]
    assert results(production, "admin")["deny-nodeport-in-production"] == "fail"
    assert production["summary"]["fail"] >= 1
    assert "edgewarden-dev" in reports(crd_api, "dev")
    assert crd_api.exists("clusterpolicyreports", "edgewarden")
    assert served.server.metric("edgewarden_existing_violations",
                                policy="deny-nodeport-in-production", namespace="production",
                                mode="Enforce") == 1

    # Fixed: the next audit says pass, and the metric drops.
    crd_api.update(service(name="admin", namespace="production"))

    def fixed() -> bool:
        audited(served, served.controllers.reports.runs if served.controllers.reports else 0)
        report = reports(crd_api, "production")["edgewarden-production"]
        return results(report, "admin").get("deny-nodeport-in-production") == "pass"
    eventually(fixed, timeout=60, interval=0.05, what="the report to show the fix")
    assert served.server.metric("edgewarden_existing_violations",
                                policy="deny-nodeport-in-production", namespace="production",
                                mode="Enforce") == 0
    assert runs >= 1


def test_a_report_whose_findings_are_gone_is_deleted(crd_api: KubeApi,
                                                     serve: ServeFactory) -> None:
    crd_api.create(namespace(name="short-lived"))
    crd_api.create(service(name="temp", namespace="short-lived"))
    served = serve(crd_api, audit_interval_seconds=HOUR)
    eventually(lambda: "edgewarden-short-lived" in reports(crd_api, "short-lived"),
               what="its report")
    crd_api.delete("services", "temp", namespace="short-lived")

    def gone() -> bool:
        audited(served, served.controllers.reports.runs if served.controllers.reports else 0)
        return not reports(crd_api, "short-lived")
    eventually(gone, timeout=60, interval=0.05, what="the stale report to go")


def test_an_unchanged_cluster_rewrites_nothing(crd_api: KubeApi, serve: ServeFactory) -> None:
    crd_api.create(service(name="web", namespace="dev"))
    served = serve(crd_api, audit_interval_seconds=HOUR)
    runs = eventually(lambda: served.controllers.reports and served.controllers.reports.runs,
                      what="the first audit")
    written = len([r for r in crd_api.writes() if r.plural == "policyreports"])
    served.clock.now += 600  # later timestamps alone are no change
    audited(served, runs)
    assert len([r for r in crd_api.writes() if r.plural == "policyreports"]) == written
    assert served.controllers.reports is not None
    last = served.controllers.reports.last
    assert last is not None and last.reconciled.unchanged >= 1


def test_3000_services_split_below_the_size_bound(crd_api: KubeApi,
                                                  serve: ServeFactory) -> None:
    crd_api.create(namespace(name="big", labels={"environment": "production"}))
    with crd_api.atomic():
        for i in range(3000):
            kind = "NodePort" if i % 10 == 0 else "ClusterIP"
            crd_api.create(service(name=f"svc-{i:04d}", namespace="big", type=kind,
                                   labels={"app": f"svc-{i:04d}", "team": "shop"}))
    served = serve(crd_api, audit_interval_seconds=HOUR)
    eventually(lambda: served.controllers.reports and served.controllers.reports.runs,
               timeout=300, what="the first audit of 3,000 Services")
    parts = reports(crd_api, "big")
    sizes = {name: len(json.dumps(r, separators=(",", ":"))) for name, r in parts.items()}
    assert len(parts) > 1, f"one report of {sum(sizes.values())} bytes was not split"
    assert max(sizes.values()) <= 500 * 1024, sizes
    assert set(parts) == {"edgewarden-big"} | {f"edgewarden-big-{i}"
                                               for i in range(2, len(parts) + 1)}
    judged = {r["resources"][0]["name"] for p in parts.values() for r in p["results"]}
    assert len(judged) == 3000, "every Service is in exactly one part"
    fails = sum(p["summary"]["fail"] for p in parts.values())
    assert fails == 300
    print(f"\n3,000 Services: {len(parts)} PolicyReports, {sum(sizes.values()) / 1024:.0f} "
          f"KiB in all, largest {max(sizes.values()) / 1024:.0f} KiB")


def test_only_the_leader_writes_reports(crd_api: KubeApi, serve: ServeFactory) -> None:
    crd_api.create(service(name="web", namespace="dev"))
    first = serve(crd_api, audit_interval_seconds=HOUR)
    eventually(lambda: first.controllers.reports and first.controllers.reports.runs,
               what="the leader's audit")
    second = serve(crd_api, audit_interval_seconds=HOUR)
    assert second.controllers.reports is not None and first.controllers.reports is not None
    second.controllers.reports.trigger()
    # Let time pass on both: the leader audits again meanwhile, the follower never does.
    audited(first, first.controllers.reports.runs)
    audited(first, first.controllers.reports.runs)
    assert first.controllers.elector.leading and not second.controllers.elector.leading
    assert second.controllers.reports.runs == 0


def test_a_leader_elected_before_the_cache_syncs_audits_once_it_has(
    crd_api: KubeApi, serve: ServeFactory
) -> None:
    crd_api.create(service(name="web", namespace="dev"))
    crd_api.forbid("list", "services")  # the cache cannot sync yet
    served = serve(crd_api, audit_interval_seconds=HOUR, ready=False)
    eventually(lambda: served.controllers.elector.leading, what="leading")
    assert served.controllers.reports is not None and served.controllers.reports.runs == 0
    crd_api.clear_refusals()
    eventually(lambda: served.controllers.reports and served.controllers.reports.runs, timeout=30,
               what="the first audit, well before the hour-long interval")
    assert "edgewarden-dev" in reports(crd_api, "dev")
