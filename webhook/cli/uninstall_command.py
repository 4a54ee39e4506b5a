"""``edgewarden uninstall``: remove what edgewarden created in the cluster (the chart's
pre-delete hook runs it; see webhook/controllers/uninstall.py for what and in what order)."""

from __future__ import annotations

from typing import Annotated

import typer

from webhook.cli.app import app, console, user_errors
from webhook.cli.examples import examples


@app.command(
    epilog=examples(
        ("edgewarden uninstall --namespace edgewarden",
         "needs a cluster: before `kubectl delete -k` (the chart's pre-delete hook runs it)"),
    ),
)
@user_errors
def uninstall(
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", metavar="NAMESPACE",
        help="edgewarden's namespace (default: this pod's, else edgewarden).")] = None,
    service: Annotated[str, typer.Option(
        "--service", metavar="NAME", help="The webhook's Service (annotated first).")
    ] = "edgewarden",
    settle: Annotated[float, typer.Option(
        "--settle", metavar="SECONDS", min=0,
        help="Done once nothing has come back for this long (running replicas stop "
        "registering within a few seconds).")] = 10.0,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=1, help="Give up (exit 2) after this long.")
    ] = 120.0,
) -> None:
    """Remove edgewarden's webhook configurations, managed quotas, reports, Lease and
    certificate Secret; leave Events, Policy objects and CRDs. Refuses no write meanwhile."""
    from webhook.certs.secretstate import current_namespace
    from webhook.cluster.webhook_configurations import RestApi
    from webhook.controllers.uninstall import uninstall as run_uninstall

    namespace = namespace or current_namespace()
    removed = run_uninstall(RestApi(), namespace=namespace, service=service, settle=settle,
                            timeout=timeout)
    if not removed.service_marked:
        console.print(f"note: no Service {namespace}/{service} to mark; replicas running "
                      "elsewhere may register again", highlight=False)
    for line in removed.objects:
        console.print(f"removed {line}", highlight=False, markup=False)
    console.print(f"uninstalled: {len(removed.objects)} objects removed", highlight=False)
