"""``edgewarden check``, ``audit``, ``report`` and ``quota``: the engine run offline.

Thin: parse flags, call :mod:`webhook.audit`, print or write the chosen format, pick the
exit code. Exit codes: 0 fine, 1 something Enforce would deny (``check``; ``audit`` only
with ``--fail-on-violation``), 2 a user error (bad file, bad flag, bad policy).
"""

from __future__ import annotations

import io
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from webhook.audit.manifests import load_manifests
from webhook.audit.quota import render_quotas
from webhook.audit.reports.html import DEFAULT_COST_PER_LB, render_html
from webhook.audit.reports.json import render_json
from webhook.audit.reports.junit import render_junit
from webhook.audit.reports.policyreport import render_policyreport
from webhook.audit.reports.sarif import render_sarif
from webhook.audit.reports.text import render_text
from webhook.audit.results import ScanReport
from webhook.audit.scan import DEFAULT_NAMESPACE, audit_objects, check_manifests
from webhook.audit.sources import cluster_objects, resolve_policies, split_exceptions
from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.options import ExceptionsOption, FlavourOption, PoliciesOption
from webhook.errors import EdgewardenError, ManifestError


class CheckFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    SARIF = "sarif"


class AuditFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    SARIF = "sarif"
    POLICYREPORT = "policyreport"


OutOption = Annotated[
    Path | None, typer.Option("--out", help="Write the report here instead of stdout.")
]
ClusterStateOption = Annotated[
    Path | None,
    typer.Option(
        "--cluster-state",
        help="YAML of Namespaces, Services and Ingresses; default: the live cluster.",
    ),
]


@app.command()
@user_errors
def check(
    filenames: Annotated[
        list[str],
        typer.Option("--filename", "-f", help="Manifest file, folder (recursive) or - for stdin."),
    ],
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    namespace_labels: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace-labels",
            help="Labels of a namespace not in the input: NS=key=value,key2=value2 (repeatable).",
        ),
    ] = None,
    namespace: Annotated[
        str,
        typer.Option("--namespace", "-n", help="Namespace of objects that name none."),
    ] = DEFAULT_NAMESPACE,
    output: Annotated[CheckFormat, typer.Option("--output", "-o")] = CheckFormat.TEXT,
    out: OutOption = None,
    exceptions: ExceptionsOption = None,
) -> None:
    """Judge manifests (e.g. a rendered Helm chart) as CREATEs, in order.

    Exit 1 when anything Enforce would deny; Warn and Audit findings do not fail.
    """
    policy_set = resolve_policies(policies, internal_lb_flavour=internal_lb_flavour)
    honoured, manifests = split_exceptions(load_manifests(filenames), exceptions)
    scan = check_manifests(
        manifests,
        policy_set,
        namespace_labels=parse_namespace_labels(namespace_labels or []),
        default_namespace=namespace,
        exceptions=honoured,
        now=time.time(),
    )
    emit(scan, output.value, out)
    if scan.failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def audit(
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    output: Annotated[AuditFormat, typer.Option("--output", "-o")] = AuditFormat.TEXT,
    out: OutOption = None,
    fail_on_violation: Annotated[
        bool,
        typer.Option("--fail-on-violation", help="Exit 1 when an Enforce policy is violated."),
    ] = False,
    exceptions: ExceptionsOption = None,
) -> None:
    """Judge what already runs in a cluster (or a --cluster-state dump) and report it."""
    policy_set = resolve_policies(policies, internal_lb_flavour=internal_lb_flavour)
    honoured, objects = split_exceptions(cluster_objects(cluster_state), exceptions)
    scan = audit_objects(objects, policy_set, exceptions=honoured, now=time.time())
    emit(scan, output.value, out)
    if fail_on_violation and scan.failed:
        raise typer.Exit(1)


@app.command("report")
@user_errors
def report_command(
    html: Annotated[Path, typer.Option("--html", help="Write the HTML page here.")],
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    cost_per_lb: Annotated[
        float,
        typer.Option(
            "--cost-per-lb",
            min=0.0,
            help="USD per load balancer per month (default: AWS NLB/ALB, $0.0225/h x 730 h).",
        ),
    ] = DEFAULT_COST_PER_LB,
    exceptions: ExceptionsOption = None,
) -> None:
    """Write the exposure and cost page: Services by type, Ingresses, LB caps and cost."""
    policy_set = resolve_policies(policies, internal_lb_flavour=internal_lb_flavour)
    honoured, objects = split_exceptions(cluster_objects(cluster_state), exceptions)
    scan = audit_objects(objects, policy_set, exceptions=honoured, now=time.time())
    write(html, render_html(scan, [m.obj for m in objects], cost_per_lb=cost_per_lb))
    console.print(f"wrote {html}", highlight=False)


@app.command()
@user_errors
def quota(
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only these namespaces (repeatable)."),
    ] = None,
    out: OutOption = None,
) -> None:
    """ResourceQuota objects that back each LoadBalancer cap at the API server."""
    policy_set = resolve_policies(policies, internal_lb_flavour=internal_lb_flavour)
    objects = cluster_objects(cluster_state)
    text = render_quotas(objects, policy_set, only=namespaces or None)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write(out, text)


def parse_namespace_labels(values: list[str]) -> dict[str, dict[str, str]]:
    """``NS=k=v,k2=v2`` (repeatable) into {NS: {k: v, k2: v2}}."""
    parsed: dict[str, dict[str, str]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise ManifestError(
                f"--namespace-labels {value!r}: expected NAMESPACE=key=value[,key=value...]"
            )
        labels = parsed.setdefault(name, {})
        for pair in filter(None, rest.split(",")):
            key, sep, label = pair.partition("=")
            if not sep or not key:
                raise ManifestError(f"--namespace-labels {value!r}: {pair!r} is not key=value")
            labels[key] = label
    return parsed


def emit(report: ScanReport, output: str, out: Path | None) -> None:
    if output == "text":
        if out is None:
            # Piped or captured output gets a wide table rather than the 80-column default.
            render_text(report, console if console.is_terminal else Console(width=160))
            return
        buffer = io.StringIO()
        render_text(report, Console(file=buffer, width=160, color_system=None))
        write(out, buffer.getvalue())
        return
    renderers = {
        "json": render_json,
        "junit": render_junit,
        "sarif": render_sarif,
        "policyreport": render_policyreport,
    }
    text = renderers[output](report)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write(out, text)
        err_console.print(f"{report.summary()}\nwrote {out}", highlight=False)


def write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise EdgewardenError(f"{path}: cannot write: {error.strerror or error}") from None
