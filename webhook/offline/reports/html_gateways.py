"""The exposure page's Gateway API sections: hostnames to Services through Gateway listeners,
the Gateways' listeners, routes that attach nowhere, and the ingress-nginx migration view.
Every value from the cluster goes through ``html.escape``."""

from __future__ import annotations

from html import escape

from webhook.offline.gateways import Backend, GatewayReport, HostExposure, ListenerExposure
from webhook.offline.nginx_migration import CARRIES, NONE, MigrationNote

CARRY_CLASS = {CARRIES: "ok", NONE: "bad"}


def gateway_sections(gateways: GatewayReport) -> str:
    if not gateways.gateways and not gateways.routes:
        return ('<h2>Gateway API</h2><p class="muted">No Gateways or routes '
                "(HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute).</p>")
    parts = ["<h2>Gateway API: hostnames to Services</h2>", _hosts_table(gateways.hosts)]
    unattached = [r for r in gateways.routes if r.unattached]
    if unattached:
        rows = "".join(
            f"<tr><td>{escape(r.ref)}</td><td>{'<br>'.join(escape(u) for u in r.unattached)}"
            "</td></tr>"
            for r in unattached
        )
        parts.append("<h3>Routes that do not attach</h3><table><tr><th>Route</th>"
                     f"<th>parentRef: why not</th></tr>{rows}</table>")
    parts.append("<h2>Gateways</h2>")
    parts.append(_gateways_table(gateways))
    return "\n".join(parts)


def _hosts_table(hosts: list[HostExposure]) -> str:
    if not hosts:
        return '<p class="muted">No route attaches to a listener.</p>'
    head = ("<tr><th>Hostname</th><th>Route</th><th>Gateway listener</th><th>Port</th>"
            "<th>Protocol</th><th>TLS</th><th>Services</th></tr>")
    rows = "".join(
        "<tr>"
        f"<td>{escape(h.host)}</td><td>{escape(h.route)}</td>"
        f"<td>{escape(h.listener.ref)}</td><td>{escape(h.listener.port)}</td>"
        f"<td>{escape(h.listener.protocol)}</td><td>{_tls(h.listener)}</td>"
        f"<td>{_backends(h.backends)}</td>"
        "</tr>"
        for h in hosts
    )
    return f"<table>{head}{rows}</table>"


def _gateways_table(gateways: GatewayReport) -> str:
    if not gateways.gateways:
        return '<p class="muted">No Gateways among the objects.</p>'
    head = ("<tr><th>Gateway</th><th>Class</th><th>Listener</th><th>Port</th><th>Protocol</th>"
            "<th>Hostname</th><th>TLS</th><th>Routes from</th></tr>")
    rows = []
    for gateway in gateways.gateways:
        for listener in gateway.listeners or ():
            allowed = listener.allowed_from
            cls = ' class="warn"' if allowed == "All" else ""
            rows.append(
                "<tr>"
                f"<td>{escape(gateway.namespace)}/{escape(gateway.name)}</td>"
                f"<td>{escape(gateway.gateway_class)}</td><td>{escape(listener.name)}</td>"
                f"<td>{escape(listener.port)}</td><td>{escape(listener.protocol)}</td>"
                f"<td>{escape(listener.hostname) or '<span class=muted>(any)</span>'}</td>"
                f"<td>{_tls(listener)}</td><td{cls}>{escape(allowed)}</td>"
                "</tr>"
            )
    return f"<table>{head}{''.join(rows)}</table>"


def _tls(listener: ListenerExposure) -> str:
    if listener.tls:
        return f'<span class="ok">{escape(listener.tls)}</span>'
    return '<span class="warn">no</span>'


def _backends(backends: tuple[Backend, ...]) -> str:
    if not backends:
        return '<span class="muted">(none)</span>'
    ungranted = ' <span class="bad">(no ReferenceGrant among the objects)</span>'
    return "<br>".join(escape(b.ref) + ("" if b.granted else ungranted) for b in backends)


def migration_section(notes: list[MigrationNote]) -> str:
    title = "<h2>ingress-nginx annotations and Gateway API</h2>"
    if not notes:
        return title + '<p class="muted">No nginx.ingress.kubernetes.io annotations.</p>'
    none = sum(1 for n in notes if n.carries == NONE)
    head = ("<tr><th>Ingress</th><th>Annotation</th><th>Value</th><th>Carries over</th>"
            "<th>In Gateway API</th></tr>")
    rows = "".join(
        "<tr>"
        f"<td>{escape(n.ingress)}</td><td>{escape(n.annotation)}</td>"
        f"<td>{escape(_short(n.value))}</td>"
        f'<td class="{CARRY_CLASS.get(n.carries, "warn")}">{escape(n.carries)}</td>'
        f"<td>{escape(n.instead)}</td>"
        "</tr>"
        for n in notes
    )
    summary = (f'<p>{len(notes)} ingress-nginx annotation(s); <span class="bad">{none} with no '
               "Gateway API equivalent</span> (they need the implementation's own policies or "
               "a redesign before moving off ingress-nginx).</p>")
    return f"{title}{summary}<table>{head}{rows}</table>"


def _short(value: str) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= 80 else flat[:77] + "..."
