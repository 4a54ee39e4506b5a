"""`edgewarden report --html` on a cluster that exposes through Gateway API: which hostnames
reach which Services through which listener, with or without TLS; routes that attach
nowhere and why; and the ingress-nginx annotations that will not carry over."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from webhook.offline.exposure import is_internal

from .helpers import FIXTURES, POLICIES, run

GATEWAY_STATE = str(FIXTURES / "gateway-state.yaml")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("gateway") / "exposure.html"
    result = run("report", "--html", str(out), "--cluster-state", GATEWAY_STATE,
                 "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    return out.read_text()


def _rows(page: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading``, as text."""
    section = page[page.index(heading):]
    table = section[section.index("<table>"):section.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    return [
        [" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
         for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        for row in rows
        if "<td" in row
    ]


def test_a_route_on_two_listeners_is_listed_once_per_listener_with_its_tls(page: str) -> None:
    rows = _rows(page, "Gateway API: hostnames to Services")
    store = [r for r in rows if r[1] == "HTTPRoute shop/store"]
    assert sorted((r[0], r[2], r[3], r[4], r[5], r[6]) for r in store) == [
        ("store.example.com", "infra/public/http", "80", "HTTP", "no", "shop/store:80"),
        ("store.example.com", "infra/public/https", "443", "HTTPS", "terminated",
         "shop/store:80"),
    ]


def test_a_tls_passthrough_route_is_shown_with_its_backend(page: str) -> None:
    rows = _rows(page, "Gateway API: hostnames to Services")
    assert ["db.example.com", "TLSRoute shop/db", "infra/public/tls-pass", "8443", "TLS",
            "passthrough", "shop/db:5432"] in rows


def test_a_cross_namespace_backend_without_reference_grant_is_flagged(page: str) -> None:
    rows = _rows(page, "Gateway API: hostnames to Services")
    cross = next(r for r in rows if r[1] == "HTTPRoute shop/cross")
    assert cross[6] == "web/api:80 (no ReferenceGrant among the objects) infra/ledger:80"


def test_routes_that_attach_nowhere_say_why(page: str) -> None:
    rows = dict((r[0], r[1]) for r in _rows(page, "Routes that do not attach"))
    assert rows == {
        "HTTPRoute shop/elsewhere":
            "infra/public/http: no hostname in common with the listener's *.example.com",
        "HTTPRoute web/blog":
            "infra/public/https: namespace web does not match the listener's selector",
    }


def test_gateway_listeners_show_tls_and_where_routes_may_come_from(page: str) -> None:
    rows = _rows(page, "<h2>Gateways</h2>")
    assert [r[2:] for r in rows] == [
        ["http", "80", "HTTP", "*.example.com", "no", "All"],
        ["https", "443", "HTTPS", "*.example.com", "terminated", "Selector"],
        ["tls-pass", "8443", "TLS", "(any)", "passthrough", "All"],
    ]
    assert '<td class="warn">All</td>' in page


def test_hostnames_from_the_cluster_are_escaped(page: str) -> None:
    assert "&lt;script&gt;x&lt;/script&gt;.example.com" in page
    assert "<script" not in page


def test_ingress_nginx_annotations_get_their_gateway_api_equivalent(page: str) -> None:
    rows = {r[1]: (r[3], r[4]) for r in _rows(page, "ingress-nginx annotations and Gateway")}
    prefix = "nginx.ingress.kubernetes.io/"
    assert rows[prefix + "force-ssl-redirect"][0] == "carries"
    assert "RequestRedirect" in rows[prefix + "force-ssl-redirect"][1]
    assert rows[prefix + "rewrite-target"][0] == "partly"
    assert rows[prefix + "whitelist-source-range"][0] == "none"
    assert rows[prefix + "some-future-annotation"] == (
        "none", "not in edgewarden's table: check your Gateway implementation's policies")
    assert "2 with no Gateway API equivalent" in page


def test_cards_count_plain_hostnames_and_annotations_without_equivalent(page: str) -> None:
    cards = dict(
        (unescape(label), unescape(value))
        for value, label in re.findall(r'<b class="[^"]*">([^<]*)</b><span>([^<]*)</span>', page)
    )
    assert cards["Gateway route hostnames"] == "4 (2 without TLS)"
    assert cards["ingress-nginx annotations with no Gateway API equivalent"] == "2"


def test_a_cluster_without_gateways_says_so(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    state = tmp_path / "state.yaml"
    state.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    assert run("report", "--html", str(out), "--cluster-state", str(state),
               "--policies", POLICIES).exit_code == 0
    assert "No Gateways or routes" in out.read_text()


@pytest.mark.parametrize(("annotations", "internal"), [
    ({"service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": "subnet-1234"}, True),
    ({"kubernetes.io/elb.autocreate": '{"type": "inner", "name": "a"}'}, True),
    ({"kubernetes.io/elb.autocreate": '{"type": "public"}'}, False),
    ({"service.beta.kubernetes.io/do-loadbalancer-network": "INTERNAL"}, True),
    ({"oci-network-load-balancer.oraclecloud.com/internal": "true"}, True),
    ({"load-balancer.hetzner.cloud/disable-public-network": "false"}, False),
])
def test_the_report_knows_every_clouds_internal_annotation(
    annotations: dict[str, str], internal: bool
) -> None:
    assert is_internal(annotations) is internal
