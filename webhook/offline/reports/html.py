"""The exposure and cost page (``edgewarden report --html``): one self-contained HTML file.

No scripts, no fonts, no external assets (it is mailed around and opened from CI
artifacts); every value from the cluster goes through ``html.escape``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from webhook import __version__
from webhook.offline.exposure import (
    DEFAULT_COST_PER_LB,
    IngressExposure,
    NamespaceExposure,
    ServiceExposure,
    exposure,
)
from webhook.offline.gateways import GatewayReport, gateway_exposure
from webhook.offline.nginx_migration import NONE, MigrationNote, migration_notes
from webhook.offline.reports.html_gateways import gateway_sections, migration_section
from webhook.offline.results import ExceptionStatus, Finding, Outcome, ScanReport
from webhook.policy.model.exceptions import ExceptionState
from webhook.policy.model.namespaces import NAMESPACE_NAME_LABEL

__all__ = ["DEFAULT_COST_PER_LB", "render_html"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1f2328;
background:#fff;line-height:1.4}
h1{margin:0 0 .2rem;font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.3rem;font-size:1.25rem}h3{margin:1.2rem 0 .4rem;font-size:1.05rem}
.muted{color:#656d76;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #d0d7de;border-radius:8px;padding:.7rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}.card span{color:#656d76;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num,th.num{text-align:right}
.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
.ok{color:#1a7f37}.info{color:#0969da}
.tag{display:inline-block;border-radius:1em;padding:0 .55em;font-size:.8rem;border:1px solid}
.tag.public{color:#cf222e;border-color:#cf222e}.tag.internal{color:#1a7f37;border-color:#1a7f37}
.tag.nodeport{color:#9a6700;border-color:#9a6700}.tag.plain{color:#656d76;border-color:#d0d7de}
footer{margin-top:2rem;color:#656d76;font-size:.85rem}
"""

RESULT_CLASS = {
    Outcome.DENY: "bad",
    Outcome.WARN: "warn",
    Outcome.AUDIT: "info",
    Outcome.PATCH: "info",
    Outcome.PASS: "ok",
    Outcome.EXEMPT: "info",
}
# The exceptions section, in this order: what needs attention first.
EXCEPTION_GROUPS = (
    (ExceptionState.EXPIRING, "Expiring within 14 days", "warn"),
    (ExceptionState.NO_EXPIRY, "Without an expiry (flagged: an exception should end)", "warn"),
    (ExceptionState.ACTIVE, "Active", "ok"),
    (ExceptionState.EXPIRED, "Expired (ignored everywhere)", "muted"),
)


def render_html(
    report: ScanReport,
    objects: Iterable[Mapping[str, Any]],
    *,
    cost_per_lb: float = DEFAULT_COST_PER_LB,
    now: dt.datetime | None = None,
) -> str:
    objects = list(objects)
    spaces = exposure(report, objects)
    labels = {space.name: space.labels for space in spaces}
    gateways = gateway_exposure(objects, labels)
    notes = migration_notes(objects)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    violations = [f for f in report.findings if f.outcome is not Outcome.PASS]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>edgewarden exposure report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Exposure and load-balancer cost</h1>",
        f'<p class="muted">edgewarden {escape(__version__)} &middot; {escape(stamp)} &middot; '
        f"{len(report.policies)} policies &middot; ${cost_per_lb:,.2f} per load balancer "
        "per month</p>",
        _cards(spaces, violations, cost_per_lb, gateways, notes),
        "<h2>Namespaces</h2>",
        _namespace_table(spaces, cost_per_lb),
        gateway_sections(gateways),
        migration_section(notes),
        "<h2>Policy findings</h2>",
        _findings_table(violations),
        "<h2>Policy exceptions</h2>",
        _exceptions_section(report.exceptions),
        "<h2>Per namespace</h2>",
        *(_namespace_detail(space) for space in spaces),
        _footer(cost_per_lb),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _cards(
    spaces: list[NamespaceExposure],
    violations: list[Finding],
    cost_per_lb: float,
    gateways: GatewayReport,
    notes: list[MigrationNote],
) -> str:
    public = sum(s.count("LoadBalancer", internal=False) for s in spaces)
    internal = sum(s.count("LoadBalancer", internal=True) for s in spaces)
    nodeports = sum(s.count("NodePort") for s in spaces)
    ingresses = [i for s in spaces for i in s.ingresses]
    without_tls = sum(1 for i in ingresses if not i.tls)
    cost = sum(s.monthly_cost(cost_per_lb) for s in spaces)
    saving = sum(s.saving(cost_per_lb) for s in spaces)
    denied = sum(1 for f in violations if f.outcome is Outcome.DENY)
    exempted = sum(1 for f in violations if f.outcome is Outcome.EXEMPT)
    cards = [
        (str(len(spaces)), "namespaces", ""),
        (str(public), "public load balancers", "bad" if public else "ok"),
        (str(internal), "internal load balancers", ""),
        (str(nodeports), "NodePort Services", "warn" if nodeports else "ok"),
        (
            f"{len(ingresses)} ({without_tls} without TLS)",
            "Ingresses",
            "warn" if without_tls else "",
        ),
        (
            f"{len(gateways.hosts)} ({gateways.plain_hosts} without TLS)",
            "Gateway route hostnames",
            "warn" if gateways.plain_hosts else "",
        ),
        (
            str(sum(1 for n in notes if n.carries == NONE)),
            "ingress-nginx annotations with no Gateway API equivalent",
            "warn" if any(n.carries == NONE for n in notes) else "",
        ),
        (f"${cost:,.2f}", "estimated LB cost / month", ""),
        (f"${saving:,.2f}", "saving by consolidating / month", "ok" if saving else ""),
        (str(denied), "Enforce violations", "bad" if denied else "ok"),
        (str(exempted), "admitted by PolicyExceptions", "warn" if exempted else ""),
    ]
    body = "".join(
        f'<div class="card"><b class="{cls}">{escape(value)}</b><span>{escape(label)}</span></div>'
        for value, label, cls in cards
    )
    return f'<div class="cards">{body}</div>'


def _namespace_table(spaces: list[NamespaceExposure], cost_per_lb: float) -> str:
    head = (
        "<tr><th>Namespace</th><th class=num>ClusterIP</th><th class=num>NodePort</th>"
        "<th class=num>LB internal</th><th class=num>LB public</th>"
        "<th class=num>Ingress TLS</th><th class=num>Ingress no TLS</th>"
        "<th>LoadBalancers vs cap</th><th class=num>LB cost / month</th>"
        "<th class=num>Saving / month</th></tr>"
    )
    rows = []
    for space in spaces:
        tls = sum(1 for i in space.ingresses if i.tls)
        no_tls = len(space.ingresses) - tls
        rows.append(
            "<tr>"
            f"<td>{escape(space.name)}{_labels(space.labels)}</td>"
            f"<td class=num>{space.count('ClusterIP') + space.count('Headless')}</td>"
            f"<td class=num{_cls(space.count('NodePort'), 'warn')}>{space.count('NodePort')}</td>"
            f"<td class=num>{space.count('LoadBalancer', internal=True)}</td>"
            f"<td class=num{_cls(space.count('LoadBalancer', internal=False), 'bad')}>"
            f"{space.count('LoadBalancer', internal=False)}</td>"
            f"<td class=num>{tls}</td><td class=num{_cls(no_tls, 'warn')}>{no_tls}</td>"
            f"<td>{_cap_text(space)}</td>"
            f"<td class=num>${space.monthly_cost(cost_per_lb):,.2f}</td>"
            f"<td class=num>${space.saving(cost_per_lb):,.2f}</td>"
            "</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="10" class="muted">no namespaces</td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _cap_text(space: NamespaceExposure) -> str:
    if not space.limits:
        return f'{space.loadbalancers} <span class="muted">(no cap)</span>'
    texts = []
    for status in space.limits:
        cls = "bad" if status.over else ("warn" if status.count == status.max else "ok")
        note = " over cap" if status.over else (" at cap" if status.count == status.max else "")
        texts.append(
            f'<span class="{cls}">{status.count} / {status.max}{note}</span> '
            f'<span class="muted">{escape(status.policy)}</span>'
        )
    return "<br>".join(texts)


def _findings_table(findings: list[Finding]) -> str:
    if not findings:
        return '<p class="ok">No policy findings: every policy holds for every object.</p>'
    head = "<tr><th>Resource</th><th>Policy</th><th>Mode</th><th>Result</th><th>Message</th></tr>"
    rows = [
        "<tr>"
        f"<td>{escape(f.resource.ref)}</td><td>{escape(f.policy)}</td>"
        f"<td>{escape(f.mode.value)}</td>"
        f'<td class="{RESULT_CLASS[f.outcome]}">{escape(f.outcome.label)}</td>'
        f"<td>{escape(_message(f))}</td>"
        "</tr>"
        for f in findings
    ]
    return f"<table>{head}{''.join(rows)}</table>"


def _message(finding: Finding) -> str:
    if finding.exception is None:
        return finding.message
    return (f"would {finding.would}: {finding.message} (admitted by "
            f"{finding.exception.describe()})")


def _exceptions_section(statuses: list[ExceptionStatus]) -> str:
    if not statuses:
        return '<p class="muted">No PolicyExceptions.</p>'
    head = ("<tr><th>Exception</th><th>Policies</th><th>Expires</th><th>Ticket</th>"
            "<th>Reason</th><th>Approved by</th><th>Admits</th></tr>")
    parts = []
    for state, title, cls in EXCEPTION_GROUPS:
        group = [s for s in statuses if s.state is state]
        if not group:
            continue
        rows = "".join(_exception_row(status, cls) for status in group)
        parts.append(f"<h3>{escape(title)} ({len(group)})</h3><table>{head}{rows}</table>")
    return "\n".join(parts)


def _exception_row(status: ExceptionStatus, cls: str) -> str:
    exception = status.exception
    policies = escape(", ".join(sorted(exception.policies)))
    if status.unknown_policies:
        policies += (' <span class="bad">(no such policy: '
                     f"{escape(', '.join(status.unknown_policies))})</span>")
    admits = "<br>".join(
        f"{escape(f.resource.ref)} <span class=\"muted\">({escape(f.policy)} would "
        f"{escape(f.would)})</span>" for f in status.admits
    ) or '<span class="muted">nothing now</span>'
    return (
        f'<tr><td class="{cls}">{escape(exception.ref)}</td><td>{policies}</td>'
        f"<td>{escape(exception.expires)}</td><td>{escape(exception.ticket or '-')}</td>"
        f"<td>{escape(exception.reason or '-')}</td>"
        f"<td>{escape(exception.approved_by or '-')}</td><td>{admits}</td></tr>"
    )


def _namespace_detail(space: NamespaceExposure) -> str:
    parts = [f"<h3>{escape(space.name)}</h3>"]
    if space.services:
        rows = "".join(_service_row(s) for s in space.services)
        parts.append(
            "<table><tr><th>Service</th><th>Type</th><th>Ports</th><th>HTTP</th></tr>"
            f"{rows}</table>"
        )
    if space.ingresses:
        rows = "".join(_ingress_row(i) for i in space.ingresses)
        parts.append(
            "<table><tr><th>Ingress</th><th>Hosts</th><th>TLS</th><th>Class</th></tr>"
            f"{rows}</table>"
        )
    if len(parts) == 1:
        parts.append('<p class="muted">No Services or Ingresses.</p>')
    return "\n".join(parts)


def _service_row(service: ServiceExposure) -> str:
    if service.type == "LoadBalancer":
        tag = "internal" if service.internal else "public"
        kind = f'LoadBalancer <span class="tag {tag}">{tag}</span>'
    elif service.type == "NodePort":
        kind = 'NodePort <span class="tag nodeport">every node</span>'
    else:
        kind = escape(service.type)
    return (
        f"<tr><td>{escape(service.name)}</td><td>{kind}</td><td>{escape(service.ports)}</td>"
        f"<td>{'yes' if service.http else 'no'}</td></tr>"
    )


def _ingress_row(ingress: IngressExposure) -> str:
    tls = '<span class="ok">yes</span>' if ingress.tls else '<span class="warn">no</span>'
    hosts = escape(", ".join(ingress.hosts) or "(any host)")
    klass = escape(ingress.ingress_class) or '<span class="muted">(default)</span>'
    return f"<tr><td>{escape(ingress.name)}</td><td>{hosts}</td><td>{tls}</td><td>{klass}</td></tr>"


def _labels(labels: Mapping[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != NAMESPACE_NAME_LABEL}
    if not shown:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    return f'<br><span class="muted">{escape(text)}</span>'


def _cls(value: int, name: str) -> str:
    return f' class="num {name}"' if value else ""


def _footer(cost_per_lb: float) -> str:
    return (
        "<footer>Cost model: each LoadBalancer Service provisions one cloud load balancer at "
        f"${cost_per_lb:,.2f} per month (set with --cost-per-lb; default AWS NLB/ALB "
        "$0.0225/h &times; 730 h, before traffic charges). The saving assumes a namespace's "
        "HTTP(S) LoadBalancer Services move behind one Ingress, keeping one load balancer; "
        "a shared Ingress controller saves more. Public means no internal-LB annotation "
        "(any flavour's: aws, aws-lbc, gcp, azure, oci, oci-nlb, digitalocean, ibm, alibaba, "
        "openstack, hetzner; or Tencent's internal subnet, Huawei's inner type).</footer>"
    )
