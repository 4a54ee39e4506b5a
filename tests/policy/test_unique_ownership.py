"""Ownership as platform teams expect it, through the shipped unique-ingress-hosts policy:
granted hosts are reserved, a prefix covers the paths under it, a wildcard the names below
it, a regex every path it cannot be proven to miss, GRPCRoutes and TLSRoutes whole hosts,
and no PolicyException settles a conflict with another namespace. Each hole of issue 19
has a test here that refuses the other namespace."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support import namespace, race
from tests.support.gateway import httproute
from webhook.admission.handlers import CLUSTER_LOCK
from webhook.cli.app import app
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.reservations import Reservations
from webhook.errors import PolicyLoadError
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.documents import load_exceptions
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import Decision
from webhook.policy.model.exceptions import ExceptionSet, parse_rfc3339
from webhook.policy.model.ports import ClusterView, EmptyCluster
from webhook.policy.model.request import make_request

from .conftest import engine_for

ROOT = Path(__file__).parents[2]
POLICY = ROOT / "policies" / "unique-ingress-hosts.yaml"
GRANTS = "edgewarden.dev/allowed-hostnames"
GATEWAY_API = "gateway.networking.k8s.io/v1"

Object = dict[str, Any]


def ingress(name: str, ns: str, host: str, *paths: tuple[str, str]) -> Object:
    """An Ingress with one rule for ``host``: each path as (pathType, path); none, no http."""
    rule: Object = {"host": host}
    if paths:
        rule["http"] = {"paths": [
            {"path": path, "pathType": kind,
             "backend": {"service": {"name": name, "port": {"number": 80}}}}
            for kind, path in paths]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": "nginx", "rules": [rule]}}


def route(name: str, ns: str, hostnames: Sequence[str], *matches: tuple[str, str]) -> Object:
    """An HTTPRoute for ``hostnames`` with one rule matching each (type, value) path."""
    rule: Object = {"backendRefs": [{"name": name, "port": 80}]}
    if matches:
        rule["matches"] = [{"path": {"type": kind, "value": value}} for kind, value in matches]
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": list(hostnames),
                     "rules": [rule]}}


def grpcroute(name: str, ns: str, hostnames: Sequence[str]) -> Object:
    return {"apiVersion": GATEWAY_API, "kind": "GRPCRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": list(hostnames),
                     "rules": [{"matches": [{"method": {"service": "pay.v1.Payments"}}],
                                "backendRefs": [{"name": name, "port": 9000}]}]}}


def tlsroute(name: str, ns: str, hostnames: Sequence[str]) -> Object:
    return {"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": list(hostnames),
                     "rules": [{"backendRefs": [{"name": name, "port": 443}]}]}}


def granted(name: str, hosts: str) -> Object:
    return namespace(name=name, annotations={GRANTS: hosts})


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policies(POLICY))


def create(engine: Engine, obj: Mapping[str, Any], cluster: ClusterView,
           exceptions: ExceptionSet | None = None, at: float | None = None) -> Decision:
    request = make_request("CREATE", obj, judged_at=at)
    if exceptions is None:
        return engine.evaluate(request, cluster)
    return engine.evaluate(request, cluster, exceptions)


def refused(decision: Decision, *expected: str) -> str:
    message = decision.deny_message()
    assert not decision.allowed, "admitted"
    assert [v.policy for v in decision.denials] == ["unique-ingress-hosts"]
    for part in expected:
        assert part in message
    return message


# ---- a granted host is reserved, whoever comes first --------------------------------------


def test_a_host_granted_to_a_namespace_is_refused_to_another_that_comes_first(
    engine: Engine,
) -> None:
    cluster = MemoryCluster([granted("shop", "pay.example.com"), namespace(name="other")])
    early = create(engine, ingress("pay", "other", "pay.example.com", ("Prefix", "/")), cluster)
    refused(early, "pay.example.com/ is reserved for namespace shop by the "
                   "edgewarden.dev/allowed-hostnames annotation")
    own = create(engine, ingress("pay", "shop", "pay.example.com", ("Prefix", "/")), cluster)
    assert own.allowed and own.key_claims and not own.warnings


def test_the_grant_wins_over_a_squatter_that_already_serves_the_host(engine: Engine) -> None:
    # The squatter took the host before the namespace was annotated: it is not evicted
    # (nothing is deleted), the granted namespace is admitted and told, and the squatter
    # can add nothing more there.
    squatter = ingress("squat", "other", "pay.example.com", ("Prefix", "/"))
    cluster = MemoryCluster([granted("shop", "pay.example.com"), namespace(name="other"),
                             squatter])
    own = create(engine, ingress("pay", "shop", "pay.example.com", ("Prefix", "/")), cluster)
    assert own.allowed
    assert own.warnings == [
        "unique-ingress-hosts: Ingress other/squat also serves pay.example.com/, although the "
        "edgewarden.dev/allowed-hostnames annotation reserves pay.example.com for namespace "
        "shop: it keeps serving until it is removed (edgewarden audit reports it)"]
    more = create(engine, ingress("more", "other", "pay.example.com", ("Prefix", "/v2")),
                  cluster)
    refused(more, "reserved for namespace shop")
    keeps = engine.evaluate(make_request("UPDATE", squatter, squatter), cluster)
    assert keeps.allowed


def test_a_wildcard_grant_reserves_every_name_below_it(engine: Engine) -> None:
    cluster = MemoryCluster([granted("shop", "*.shop.example.com"), namespace(name="other")])
    for host in ("a.shop.example.com", "a.b.shop.example.com", "*.eu.shop.example.com"):
        refused(create(engine, route("r", "other", [host]), cluster),
                "reserved for namespace shop")
        assert create(engine, route("r", "shop", [host]), cluster).allowed
    # The domain itself is not below the wildcard: it goes to whoever serves it first.
    assert create(engine, route("r", "other", ["shop.example.com"]), cluster).allowed


def test_the_most_specific_grant_decides(engine: Engine) -> None:
    cluster = MemoryCluster([granted("platform", "*.example.com"),
                             granted("shop", "pay.example.com"), namespace(name="other")])
    refused(create(engine, route("r", "platform", ["pay.example.com"]), cluster),
            "pay.example.com (whole host) is reserved for namespace shop")
    assert create(engine, route("r", "platform", ["www.example.com"]), cluster).allowed
    assert create(engine, route("r", "shop", ["pay.example.com"]), cluster).allowed
    refused(create(engine, route("r", "other", ["www.example.com"]), cluster),
            "reserved for namespace platform")
    # A wildcard route would take pay.example.com's traffic until shop serves it.
    refused(create(engine, route("r", "platform", ["*.example.com"]), cluster),
            "*.example.com (whole host) covers pay.example.com, reserved for namespace shop")


def test_a_grant_of_any_host_reserves_nothing(engine: Engine) -> None:
    cluster = MemoryCluster([granted("ops", "*"), namespace(name="other")])
    assert create(engine, route("r", "other", ["ops.example.com"]), cluster).allowed


def test_namespaces_granted_the_same_host_share_it_first_come(engine: Engine) -> None:
    cluster = MemoryCluster([granted("blue", "app.example.com"),
                             granted("green", "app.example.com"), namespace(name="other"),
                             ingress("app", "blue", "app.example.com", ("Prefix", "/"))])
    refused(create(engine, ingress("app", "green", "app.example.com", ("Prefix", "/")),
                   cluster), "app.example.com/ is held by Ingress blue/app")
    refused(create(engine, ingress("app", "other", "app.example.com", ("Prefix", "/")),
                   cluster), "reserved for namespaces blue, green")


def test_a_grant_is_read_from_the_namespace_as_it_is_now(engine: Engine) -> None:
    cluster = MemoryCluster([namespace(name="shop"), namespace(name="other")])
    attempt = ingress("pay", "other", "pay.example.com", ("Prefix", "/"))
    assert create(engine, attempt, cluster).allowed
    cluster.add(granted("shop", "Pay.Example.com , *.shop.example.com"))
    refused(create(engine, attempt, cluster), "reserved for namespace shop")
    cluster.add(namespace(name="shop"))
    assert create(engine, attempt, cluster).allowed


# ---- a prefix covers the paths under it ------------------------------------------------


@pytest.mark.parametrize(("claim", "detail"), [
    (ingress("login", "other", "shop.example.com", ("Prefix", "/login")),
     "shop.example.com/login overlaps shop.example.com/, held by Ingress shop/front"),
    (route("login", "other", ["shop.example.com"], ("PathPrefix", "/login/sso")),
     "shop.example.com/login/sso overlaps shop.example.com/"),
    (ingress("a", "other", "shop.example.com", ("Exact", "/a")),
     "shop.example.com/a (Exact) overlaps shop.example.com/"),
    (ingress("a", "other", "shop.example.com", ("ImplementationSpecific", "/a")),
     "shop.example.com/a overlaps shop.example.com/"),
])
def test_a_path_under_another_namespaces_prefix_is_refused(
    engine: Engine, claim: Object, detail: str
) -> None:
    cluster = MemoryCluster([namespace(name="shop"), namespace(name="other"),
                             ingress("front", "shop", "shop.example.com", ("Prefix", "/"))])
    refused(create(engine, claim, cluster), detail)


def test_prefixes_are_compared_by_segments(engine: Engine) -> None:
    cluster = MemoryCluster([namespace(name="docs"), namespace(name="other"),
                             route("guides", "docs", ["docs.example.com"],
                                   ("PathPrefix", "/guides"))])
    beside = ingress("x", "other", "docs.example.com", ("Prefix", "/guidesx"),
                     ("Exact", "/guide"), ("Prefix", "/about"))
    assert create(engine, beside, cluster).allowed
    above = ingress("x", "other", "docs.example.com", ("Prefix", "/"))
    refused(create(engine, above, cluster), "docs.example.com/ overlaps docs.example.com/guides")


# ---- a wildcard covers the names below it ------------------------------------------------


def test_a_host_below_another_namespaces_wildcard_is_refused(engine: Engine) -> None:
    cluster = MemoryCluster([namespace(name="wild"), namespace(name="other"),
                             ingress("tenants", "wild", "*.wild.example.com", ("Prefix", "/"))])
    refused(create(engine, ingress("a", "other", "a.wild.example.com", ("Prefix", "/x")),
                   cluster),
            "a.wild.example.com/x overlaps *.wild.example.com/, held by Ingress wild/tenants")
    refused(create(engine, route("deep", "other", ["a.b.wild.example.com"]), cluster),
            "Ingress wild/tenants")
    assert create(engine, route("apex", "other", ["wild.example.com"]), cluster).allowed
    # ...and the other way round: a wildcard over a name someone serves.
    served = MemoryCluster([namespace(name="shop"), namespace(name="other"),
                            ingress("front", "shop", "shop.example.com", ("Prefix", "/"))])
    refused(create(engine, route("all", "other", ["*.example.com"]), served),
            "*.example.com (whole host) overlaps shop.example.com/")


# ---- regular expressions ------------------------------------------------------------------


def test_a_regular_expression_path_overlaps_unless_its_fixed_start_rules_it_out(
    engine: Engine,
) -> None:
    cluster = MemoryCluster([namespace(name="shop"), namespace(name="other"),
                             ingress("cart", "shop", "shop.example.com", ("Prefix", "/cart"))])
    everything = route("all", "other", ["shop.example.com"], ("RegularExpression", "/.*"))
    message = refused(create(engine, everything, cluster),
                      "shop.example.com/.* (RegularExpression) overlaps shop.example.com/cart")
    assert message.endswith(
        "a RegularExpression path is taken to overlap every path on its host unless it starts "
        "with ^ and a fixed prefix that rules the overlap out)")
    elsewhere = route("api", "other", ["shop.example.com"], ("RegularExpression", "^/api/v[0-9]+"))
    assert create(engine, elsewhere, cluster).allowed
    reaching = route("carts", "other", ["shop.example.com"], ("RegularExpression", "^/carts?/.*"))
    refused(create(engine, reaching, cluster), "RegularExpression")


# ---- GRPCRoute and TLSRoute --------------------------------------------------------------


@pytest.mark.parametrize("claim", [
    grpcroute("grpc", "other", ["shop.example.com"]),
    tlsroute("tls", "other", ["shop.example.com"]),
], ids=["GRPCRoute", "TLSRoute"])
def test_grpc_and_tls_routes_take_the_whole_host(engine: Engine, claim: Object) -> None:
    cluster = MemoryCluster([namespace(name="shop"), namespace(name="other"),
                             route("cart", "shop", ["shop.example.com"], ("PathPrefix", "/cart"))])
    refused(create(engine, claim, cluster),
            "shop.example.com (whole host) overlaps shop.example.com/cart, held by HTTPRoute "
            "shop/cart")


def test_a_route_of_any_kind_cannot_take_a_host_a_grpcroute_serves(engine: Engine) -> None:
    cluster = MemoryCluster([namespace(name="pay"), namespace(name="other"),
                             grpcroute("api", "pay", ["api.pay.example.com"])])
    refused(create(engine, ingress("x", "other", "api.pay.example.com", ("Exact", "/health")),
                   cluster), "held by GRPCRoute pay/api")
    refused(create(engine, tlsroute("x", "other", ["*.pay.example.com"]), cluster),
            "held by GRPCRoute pay/api")


# ---- exceptions never settle ownership --------------------------------------------------

EXPIRES = "2030-06-01T00:00:00Z"
BEFORE_EXPIRY = parse_rfc3339(EXPIRES) - 3600


def exception(tmp_path: Path, ns: str, name: str, policy: str = "unique-ingress-hosts",
              ) -> ExceptionSet:
    file = tmp_path / f"{ns}-{name}.yaml"
    file.write_text(textwrap.dedent(f"""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: PolicyException
        metadata: {{name: take-{name}, namespace: {ns}}}
        spec:
          policies: [{policy}]
          match: {{names: [{name}]}}
          expiresAt: "{EXPIRES}"
          ticket: PLAT-19
        """))
    return load_exceptions(file)


def test_an_exception_in_your_namespace_does_not_let_you_take_another_teams_host(
    engine: Engine, tmp_path: Path
) -> None:
    cluster = MemoryCluster([granted("shop", "pay.example.com"), namespace(name="evil"),
                             ingress("front", "shop", "shop.example.com", ("Prefix", "/"))])
    exceptions = exception(tmp_path, "evil", "steal")
    served = create(engine, ingress("steal", "evil", "shop.example.com", ("Prefix", "/")),
                    cluster, exceptions, BEFORE_EXPIRY)
    message = refused(served, "shop.example.com/ is held by Ingress shop/front")
    assert "PolicyException evil/take-steal" in message
    assert "does not apply: an exception never settles who owns a key held or reserved in " \
           "another namespace" in message
    assert served.exemptions == () and not served.key_claims
    reserved = create(engine, ingress("steal", "evil", "pay.example.com", ("Prefix", "/")),
                      cluster, exceptions, BEFORE_EXPIRY)
    refused(reserved, "reserved for namespace shop", "PolicyException evil/take-steal")


def test_an_exception_cannot_skip_ownership_by_making_the_policy_fail(
    engine: Engine, tmp_path: Path
) -> None:
    # Past the evaluation budget the policy fails closed; an exception must not turn that
    # failure into an admission that never checked whose hosts these are.
    rules = [{"host": f"h{i}.example.com"} for i in range(40_000)]
    big = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "steal", "namespace": "evil"}, "spec": {"rules": rules}}
    decision = create(engine, big, EmptyCluster(), exception(tmp_path, "evil", "steal"),
                      BEFORE_EXPIRY)
    assert not decision.allowed and decision.exemptions == ()
    assert "evaluation budget" in decision.deny_message()


VALIDATED_HOSTS = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: named-hosts}
spec:
  match: {kinds: [HTTPRoute]}
  validations:
    - expression: "object.spec.hostnames.all(h, h.endsWith('.example.com'))"
      message: hosts end in .example.com
  unique:
    match: HostPath
    keys: "has(object.spec.hostnames) ? object.spec.hostnames : []"
"""


def test_an_exception_still_loosens_what_is_yours(tmp_path: Path) -> None:
    engine = engine_for(VALIDATED_HOSTS)
    cluster = MemoryCluster([namespace(name="shop"), namespace(name="lab"),
                             route("front", "shop", ["shop.example.com"])])
    exceptions = exception(tmp_path, "lab", "try", policy="named-hosts")
    own = create(engine, route("try", "lab", ["try.example.org"]), cluster, exceptions,
                 BEFORE_EXPIRY)
    assert own.allowed and [e.policy for e in own.exemptions] == ["named-hosts"]
    theirs = create(engine, route("try", "lab", ["try.example.org", "shop.example.com"]),
                    cluster, exceptions, BEFORE_EXPIRY)
    assert not theirs.allowed
    assert "shop.example.com (whole host) is held by HTTPRoute shop/front" in \
        theirs.deny_message()


# ---- one replica's concurrent admissions: reservations overlap as the cache does ---------


def test_concurrent_creates_of_overlapping_paths_admit_exactly_one(engine: Engine) -> None:
    # Every claim overlaps every other (/, /pay and the wildcard above the host), none is
    # the same key as one in another kind: only the overlap rule on reservations stops
    # the second.
    cluster = MemoryCluster([namespace(name=f"team-{i}") for i in range(12)])
    reservations = Reservations(grace_seconds=600)
    view = reservations.view(cluster)
    claims = [ingress("r", f"team-{i}", "contested.example.com", ("Prefix", "/"))
              if i % 3 == 0 else
              route("r", f"team-{i}", ["contested.example.com"], ("PathPrefix", "/pay"))
              if i % 3 == 1 else
              route("r", f"team-{i}", ["*.example.com"])
              for i in range(12)]
    allowed: list[str] = []

    def admit(i: int) -> None:
        request = make_request("CREATE", claims[i], uid=f"uid-{i}")
        with reservations.lock(CLUSTER_LOCK):
            decision = engine.evaluate(request, view)
            if decision.allowed:
                reservations.reserve(decision.limit_claims, request.uid,
                                     keys=decision.key_claims)
                allowed.append(request.namespace)

    race(admit, len(claims))

    assert len(allowed) == 1, allowed


def test_a_reservation_holds_a_prefix_against_a_path_under_it() -> None:
    engine = Engine(load_policies(POLICY))
    reservations = Reservations(grace_seconds=600)
    view = reservations.view(MemoryCluster([namespace(name="a"), namespace(name="b")]))
    first = make_request("CREATE", route("r", "a", ["x.example.com"], ("PathPrefix", "/")),
                         uid="first")
    decision = engine.evaluate(first, view)
    assert decision.allowed
    reservations.reserve(decision.limit_claims, first.uid, keys=decision.key_claims)
    under = make_request("CREATE", ingress("r", "b", "x.example.com", ("Exact", "/deep/x")))
    refused(engine.evaluate(under, view),
            "x.example.com/deep/x (Exact) overlaps x.example.com/, held by HTTPRoute a/r")
    elsewhere = make_request("CREATE", ingress("r", "b", "y.example.com", ("Exact", "/")))
    assert engine.evaluate(elsewhere, view).allowed


# ---- check and audit ------------------------------------------------------------------------

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: checkout
  annotations: {edgewarden.dev/allowed-hostnames: pay.example.com}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front, namespace: shop}
spec:
  rules:
    - host: shop.example.com
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: login, namespace: other}
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /login, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: pay, namespace: other}
spec:
  hostnames: [pay.example.com]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: pay, namespace: checkout}
spec:
  hostnames: [pay.example.com]
"""


def findings(report: Mapping[str, Any]) -> dict[str, list[str]]:
    results = report["results"]
    assert results
    return {f"{r['resource']['namespace']}/{r['resource']['name']}":
            [f["result"] for f in r["findings"]] for r in results}


def test_check_replays_manifests_in_order_with_overlap_and_grants(tmp_path: Path) -> None:
    manifest = tmp_path / "all.yaml"
    manifest.write_text(MANIFESTS)
    # Namespaces the input does not define are judged as unlabelled (ownership reads only
    # the grant annotations, which the manifests carry where they matter).
    result = CliRunner().invoke(app, ["check", "--policies", str(POLICY), "-f", str(manifest),
                                      "--assume-unlabelled", "-o", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert findings(json.loads(result.stdout)) == {
        "shop/front": ["pass"], "other/login": ["deny"], "other/pay": ["deny"],
        "checkout/pay": ["pass"]}


def test_audit_reports_both_sides_of_an_overlap_and_the_squatter_of_a_grant(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(MANIFESTS)
    result = CliRunner().invoke(app, ["audit", "--policies", str(POLICY), "--cluster-state",
                                      str(state), "-o", "json"], catch_exceptions=False)
    report = json.loads(result.stdout)
    assert findings(report) == {
        "shop/front": ["deny"], "other/login": ["deny"], "other/pay": ["deny"],
        "checkout/pay": ["pass"]}
    messages = {r["resource"]["name"] + "@" + r["resource"]["namespace"]:
                r["findings"][0]["message"] for r in report["results"]}
    assert "shop.example.com/ overlaps shop.example.com/login, held by Ingress other/login" \
        in messages["front@shop"]
    assert "pay.example.com (whole host) is reserved for namespace checkout" \
        in messages["pay@other"]


# ---- the policy document ---------------------------------------------------------------------


def test_a_grant_annotation_needs_host_path_matching(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {name: p}
        spec:
          match: {kinds: [HTTPRoute]}
          unique:
            keys: "has(object.spec.hostnames) ? object.spec.hostnames : []"
            grantAnnotation: edgewarden.dev/allowed-hostnames
        """))
    with pytest.raises(PolicyLoadError) as error:
        load_policies(path)
    (problem,) = error.value.problems
    assert "spec.unique.grantAnnotation" in str(problem)
    assert "needs match: HostPath" in str(problem)


def test_a_key_that_is_not_a_host_path_key_fails_the_policy_by_its_failure_policy() -> None:
    engine = engine_for("""
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  match: {kinds: [HTTPRoute]}
  unique:
    match: HostPath
    keys: "object.spec.hostnames.map(h, h + ' Begins /')"
""")
    decision = create(engine, route("r", "a", ["a.example.com"]), EmptyCluster())
    assert not decision.allowed
    assert "is not a HostPath key: a HostPath key's path type is one of" in \
        decision.deny_message()


def test_plain_keys_still_compare_as_strings() -> None:
    engine = engine_for("""
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: p}
spec:
  match: {kinds: [HTTPRoute]}
  unique:
    keys: "has(object.spec.hostnames) ? object.spec.hostnames : []"
""")
    cluster = MemoryCluster([namespace(name="a"), namespace(name="b"),
                             httproute(name="r", namespace="a", hostnames=["*.example.com"])])
    assert create(engine, route("r", "b", ["x.example.com"]), cluster).allowed
    assert "*.example.com is held by HTTPRoute a/r" in \
        create(engine, route("r", "b", ["*.example.com"]), cluster).deny_message()
