"""``edgewarden replay --audit-log FILE``: judge the writes an API-server audit log records,
in order, and say where the policies decide otherwise than what was recorded.

Exit codes: 0 done (differences are reported, not failed on unless
``--fail-on-difference``), 1 a difference with ``--fail-on-difference``, 2 a user error.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, console, make_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.options import (
    ExceptionsOption,
    FlavourOption,
    PoliciesOption,
    out_file,
    output_format,
)
from webhook.cli.output import PLAIN_WIDTH, deliver
from webhook.cli.policy_source import policy_paths

LOG = "tests/audit/fixtures/apiserver-audit.log"
STATE = "tests/audit/fixtures/replay-cluster.yaml"

WebhookOption = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook",
        help="Name of a webhook of ours in the API server's messages and annotations "
        "(repeatable; default: validate.edgewarden.dev and mutate.edgewarden.dev).",
    ),
]


def webhook_names(given: list[str] | None) -> frozenset[str]:
    from webhook.offline.apiserver_log import DEFAULT_WEBHOOKS

    return frozenset(given or DEFAULT_WEBHOOKS)


@app.command(
    epilog=examples(
        (f"edgewarden replay --audit-log {LOG}",
         "a recorded log: every decision agrees"),
        (f"edgewarden replay --audit-log {LOG} -o json", ""),
        (f"edgewarden replay --audit-log {LOG} --cluster-state {STATE} --fail-on-difference",
         "exit 1: had team-a run two LoadBalancers already, the log's would be refused"),
        ("edgewarden replay --audit-log /var/log/kubernetes/audit.log -n payments "
         "--fail-on-difference", "on a control-plane node (needs a cluster)"),
    ),
)
@user_errors
def replay(
    audit_log: Annotated[
        str,
        typer.Option("--audit-log", help="The API server's audit log (JSON lines, "
                     "audit.k8s.io/v1; .gz too; - for stdin). docs/replay.md: the audit policy "
                     "it needs."),
    ],
    policies: PoliciesOption = None,
    internal_lb_flavour: FlavourOption = None,
    cluster_state: Annotated[
        Path | None,
        typer.Option("--cluster-state", help="YAML of what existed before the log begins "
                     "(Namespaces with their labels, Services, Ingresses)."),
    ] = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Judge only requests in these namespaces "
                     "(repeatable): where the webhook runs."),
    ] = None,
    webhooks: WebhookOption = None,
    output: Annotated[str, output_format("text", "json")] = "text",
    out: Annotated[Path | None, out_file("the report")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="List every request, not only those that differ."),
    ] = False,
    fail_on_difference: Annotated[
        bool, typer.Option("--fail-on-difference",
                           help="Exit 1 when a decision differs from the recorded one."),
    ] = False,
    exceptions: ExceptionsOption = None,
) -> None:
    """Replay an API-server audit log against the policies; report what differs."""
    # Imported here: --help and shell completion need none of it (webhook/cli/__init__.py).
    from webhook.offline.apiserver_log import read_audit_log
    from webhook.offline.replay import ReplayOptions
    from webhook.offline.replay import replay as replay_log
    from webhook.offline.reports.replay import render_json, render_text
    from webhook.offline.sources import cluster_objects, resolve_policies, split_exceptions

    policy_set = resolve_policies(policy_paths(policies), internal_lb_flavour=internal_lb_flavour)
    seed = cluster_objects(cluster_state) if cluster_state is not None else []
    honoured, seed = split_exceptions(seed, exceptions)
    log = read_audit_log(audit_log)
    options = ReplayOptions(webhook_names(webhooks),
                            frozenset(namespaces) if namespaces else None)
    [report] = replay_log(log, [policy_set], options, seed=seed, exceptions=honoured)
    if log.malformed:
        report.notes.append(f"{len(log.malformed)} line(s) of the log are no audit event "
                            f"(first: line {log.malformed[0]})")
    if output == "json":
        deliver(render_json(report), out, report.summary())
    elif out is None:
        render_text(report, console if console.is_terminal else make_console(width=PLAIN_WIDTH),
                    every=every)
    else:
        buffer = io.StringIO()
        render_text(report, make_console(file=buffer, width=PLAIN_WIDTH, color_system=None),
                    every=every)
        deliver(buffer.getvalue(), out, report.summary())
    if fail_on_difference and report.differing:
        raise typer.Exit(1)
