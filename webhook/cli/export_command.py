"""``edgewarden export``: ValidatingAdmissionPolicy and MutatingAdmissionPolicy objects for the
policies the API server can run itself, and the coverage matrix (docs/native.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.options import FlavourOption, PoliciesOption, out_file, output_format
from webhook.cli.output import deliver, documents
from webhook.cli.policy_source import policy_paths


@app.command(
    epilog=examples(
        ("edgewarden export | kubectl apply -f -",
         "the native objects, into a cluster (needs a cluster)"),
        ("edgewarden export --coverage", "which policy runs where, and why"),
        ("edgewarden export --keep deny-external-ips -o json --out native.json", ""),
    ),
)
@user_errors
def export(
    policies: PoliciesOption = None,
    coverage: Annotated[bool, typer.Option(
        "--coverage", help="Print the coverage matrix (text, or -o json) instead of the "
        "objects.")] = False,
    keep: Annotated[list[str] | None, typer.Option(
        "--keep", metavar="POLICY",
        help="Keep this policy on the webhook, e.g. one you grant PolicyExceptions for "
        "(native objects never honour them); repeatable.")] = None,
    internal_lb_flavour: FlavourOption = None,
    output: Annotated[str, output_format("yaml", "json", "text")] = "yaml",
    out: Annotated[Path | None, out_file("the objects or the matrix")] = None,
) -> None:
    """ValidatingAdmissionPolicy and MutatingAdmissionPolicy objects (v1) for every policy
    the API server can run natively, with the coverage matrix on stderr."""
    from webhook.native.export import export as export_policies
    from webhook.native.render import coverage_table
    from webhook.policy.load.loader import load_policies

    policy_set = load_policies(*policy_paths(policies), internal_lb_flavour=internal_lb_flavour)
    kept = list(keep or ())
    unknown = sorted(set(kept) - {p.name for p in policy_set.policies})
    if unknown:
        raise typer.BadParameter(f"no policy named {', '.join(unknown)}", param_hint="--keep")
    result = export_policies(policy_set, kept)
    if coverage:
        if output == "json":
            text = json.dumps([c.as_dict() for c in result.coverage], indent=2) + "\n"
        else:
            text = coverage_table(result.coverage)
        deliver(text, out)
        return
    if output == "text":
        raise typer.BadParameter("objects are yaml or json; text is for --coverage",
                                 param_hint="-o")
    deliver(documents(result.objects, output), out)
    native = sum(1 for c in result.coverage if c.validating or c.mutating)
    err_console.print(f"{native} of {len(result.coverage)} policies exported "
                      f"({len(result.objects)} objects); `edgewarden export --coverage` says "
                      "why the rest need the webhook", highlight=False)
