"""``edgewarden audit``, ``report`` and ``quota``: the engine run over what a cluster holds.

Thin: parse flags, call :mod:`webhook.offline`, print or write the chosen format, pick the
exit code. Exit codes: 0 fine, 1 an Enforce policy is violated (``audit`` only with
``--fail-on-violation``), 2 a user error (bad file, bad flag, bad policy, no cluster).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.exception_options import (
    DEFAULT_MAX_EXCEPTION_DAYS,
    ExceptionNamespaceOption,
    MaxExceptionDaysOption,
    honour,
    offline_rules,
)
from webhook.cli.options import (
    ExceptionsOption,
    FlavourOption,
    PoliciesOption,
    WithDefaultsOption,
    out_file,
    output_format,
)
from webhook.cli.output import deliver, documents, emit, render_report, write
from webhook.cli.policy_source import policy_paths
from webhook.cli.progress import progress
from webhook.errors import ExitCode

ClusterStateOption = Annotated[
    Path | None,
    typer.Option(
        "--cluster-state",
        help="YAML of Namespaces, Services and Ingresses; default: the live cluster.",
    ),
]
STATE = "examples/cluster-state.yaml"


@app.command(
    epilog=examples(
        (f"edgewarden audit --cluster-state {STATE}", "a sample cluster, no cluster needed"),
        (f"edgewarden audit --cluster-state {STATE} -o yaml --out audit.yaml", ""),
        (f"edgewarden audit --cluster-state {STATE} --fail-on-violation",
         "exit 1: the sample breaks Enforce policies"),
        ("kubectl get ns,svc,ing -A -o yaml > state.yaml && edgewarden audit "
         "--cluster-state state.yaml", "a snapshot to look at offline (needs a cluster)"),
        ("edgewarden audit -o policyreport | kubectl apply -f -",
         "the live cluster, as PolicyReports (needs a cluster)"),
    ),
)
@user_errors
def audit(
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    output: Annotated[
        str, output_format("text", "json", "yaml", "junit", "sarif", "policyreport")
    ] = "text",
    out: Annotated[Path | None, out_file("the report")] = None,
    fail_on_violation: Annotated[
        bool,
        typer.Option("--fail-on-violation", help="Exit 1 when an Enforce policy is violated."),
    ] = False,
    exceptions: ExceptionsOption = None,
    exception_namespace: ExceptionNamespaceOption = None,
    max_exception_days: MaxExceptionDaysOption = DEFAULT_MAX_EXCEPTION_DAYS,
    with_defaults: WithDefaultsOption = False,
) -> None:
    """Judge what already runs in a cluster (or a --cluster-state dump) and report it."""
    # Imported here: --help and shell completion need none of it (webhook/cli/__init__.py).
    from webhook.offline.scan import audit_objects
    from webhook.offline.sources import cluster_objects, resolve_policies, split_exceptions

    policy_set = resolve_policies(policy_paths(policies, with_defaults=with_defaults),
                                  internal_lb_flavour=internal_lb_flavour)
    with progress() as bar:
        found = cluster_objects(cluster_state, bar, policy_set.kinds())
        found_exceptions, objects = split_exceptions(found, exceptions)
        now = time.time()
        honoured = honour(found_exceptions,
                          offline_rules(exception_namespace, max_exception_days), now)
        scan = audit_objects(objects, policy_set, bar, exceptions=honoured, now=now)
        bar.begin(f"writing {output}")
        rendered = render_report(scan, output)
    for note in scan.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    from webhook.native.render import placement_note

    err_console.print(f"note: {placement_note(policy_set.policies)}", highlight=False,
                      markup=False)
    emit(scan, output, out, rendered)
    if fail_on_violation and scan.failed:
        raise typer.Exit(ExitCode.FOUND)


@app.command(
    "report",
    epilog=examples(
        f"edgewarden report --html exposure.html --cluster-state {STATE}",
        (f"edgewarden report --html exposure.html --cluster-state {STATE} --cost-per-lb 16.43",
         "your own price per load balancer and month"),
        ("edgewarden report --html exposure.html", "the live cluster (needs a cluster)"),
    ),
)
@user_errors
def report_command(
    html: Annotated[Path, typer.Option("--html", help="Write the HTML page here.")],
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    cost_per_lb: Annotated[
        float | None,
        typer.Option(
            "--cost-per-lb",
            min=0.0,
            show_default=False,
            help="USD per load balancer per month (default: 18.25, AWS NLB/ALB, "
            "$0.0225/h x 730 h).",
        ),
    ] = None,
    exceptions: ExceptionsOption = None,
    exception_namespace: ExceptionNamespaceOption = None,
    max_exception_days: MaxExceptionDaysOption = DEFAULT_MAX_EXCEPTION_DAYS,
    with_defaults: WithDefaultsOption = False,
) -> None:
    """Write the exposure and cost page: Services by type, Ingresses, LB caps and cost."""
    from webhook.offline.reports.html import DEFAULT_COST_PER_LB, render_html
    from webhook.offline.scan import audit_objects
    from webhook.offline.sources import (
        EXPOSURE_KINDS,
        cluster_objects,
        resolve_policies,
        split_exceptions,
    )
    from webhook.policy.model.kinds import merge

    if cost_per_lb is None:
        cost_per_lb = DEFAULT_COST_PER_LB
    policy_set = resolve_policies(policy_paths(policies, with_defaults=with_defaults),
                                  internal_lb_flavour=internal_lb_flavour)
    with progress() as bar:
        kinds = merge((*policy_set.kinds(), *EXPOSURE_KINDS))  # the page shows every route
        found = cluster_objects(cluster_state, bar, kinds)
        found_exceptions, objects = split_exceptions(found, exceptions)
        now = time.time()
        honoured = honour(found_exceptions,
                          offline_rules(exception_namespace, max_exception_days), now)
        scan = audit_objects(objects, policy_set, bar, exceptions=honoured, now=now)
        bar.begin("writing the page")
        page = render_html(scan, [m.obj for m in objects], cost_per_lb=cost_per_lb)
    write(html, page)
    console.print(f"wrote {html}", highlight=False)


@app.command(
    epilog=examples(
        f"edgewarden quota --cluster-state {STATE}",
        (f"edgewarden quota --cluster-state {STATE} -n production -o json --out quota.json", ""),
        ("edgewarden quota -n payments -n shop | kubectl apply -f -",
         "the live cluster (needs a cluster)"),
    ),
)
@user_errors
def quota(
    cluster_state: ClusterStateOption = None,
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only these namespaces (repeatable)."),
    ] = None,
    output: Annotated[str, output_format("yaml", "json")] = "yaml",
    out: Annotated[Path | None, out_file("the ResourceQuota objects")] = None,
    with_defaults: WithDefaultsOption = False,
) -> None:
    """ResourceQuota objects that back each LoadBalancer cap at the API server."""
    from webhook.offline.quota import loadbalancer_caps, quota_object
    from webhook.offline.sources import cluster_objects, resolve_policies

    policy_set = resolve_policies(policy_paths(policies, with_defaults=with_defaults),
                                  internal_lb_flavour=internal_lb_flavour)
    with progress() as bar:
        objects = cluster_objects(cluster_state, bar, ())  # caps need Namespaces alone
    caps = loadbalancer_caps(objects, policy_set, only=namespaces or None)
    quotas = [quota_object(namespace, cap) for namespace, cap in caps.items()]
    if not quotas and output == "yaml":
        # Still valid YAML (a comment) for `| kubectl apply -f -`, and says why it is empty.
        text = "# no limit policy caps LoadBalancer Services in these namespaces\n"
    else:
        text = documents(quotas, output)
    deliver(text, out, f"{len(quotas)} ResourceQuota object(s)")
