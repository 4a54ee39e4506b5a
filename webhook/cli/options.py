"""Options several commands share, declared once so they mean the same everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from typer.models import OptionInfo

FLAVOUR_ENVIRONMENT = "EDGEWARDEN_INTERNAL_LB_FLAVOUR"
# The keys of webhook.policy.model.policy.INTERNAL_LB_FLAVOURS (tests/cli/test_manners.py keeps
# them equal), written out so that --help and shell completion need not import the engine.
INTERNAL_LB_FLAVOURS = (
    "aws", "aws-lbc", "gcp", "azure", "oci", "oci-nlb", "digitalocean", "ibm", "alibaba",
    "openstack", "hetzner",
)


def _known_flavour(value: str | None) -> str | None:
    if value is not None and value not in INTERNAL_LB_FLAVOURS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(INTERNAL_LB_FLAVOURS)}")
    return value


PoliciesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--policies",
        "-p",
        help="Policy file or folder; repeat to load several (default: ./policies).",
    ),
]
FlavourOption = Annotated[
    str | None,
    typer.Option(
        "--internal-lb-flavour",
        envvar=FLAVOUR_ENVIRONMENT,
        callback=_known_flavour,
        help="Cloud of every internalLoadBalancer mutation: "
        f"{', '.join(INTERNAL_LB_FLAVOURS)} (default: as each policy says).",
    ),
]


def output_format(*choices: str) -> OptionInfo:
    """``-o/--output``: the output format, the same flag in every command.

    A plain string checked by a callback rather than a click Choice, so that the old
    ``webhook-config -o FILE`` (and any file name given by habit) gets told where the file
    goes now instead of a bare "invalid choice".
    """

    def check(value: str) -> str:
        chosen = value.lower()
        if chosen in choices:
            return chosen
        hint = ""
        if "." in value or "/" in value:
            hint = f"; -o is the output format, write a file with --out {value}"
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}{hint}")

    def complete(incomplete: str) -> Sequence[str]:
        return [choice for choice in choices if choice.startswith(incomplete)]

    option: OptionInfo = typer.Option(
        "--output",
        "-o",
        callback=check,
        autocompletion=complete,
        # One word: the help lists the choices, and a long list would crowd 80 columns.
        metavar="FORMAT",
        show_default=True,
        help=f"Output format: {', '.join(choices)}.",
    )
    return option


def out_file(what: str = "the output") -> OptionInfo:
    """``--out FILE``: where a command writes instead of stdout, the same flag everywhere."""
    option: OptionInfo = typer.Option(
        "--out", help=f"Write {what} to this file instead of stdout.", dir_okay=False,
        metavar="FILE",
    )
    return option

ExceptionsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--exceptions",
        help="PolicyException file or folder (repeatable); honoured as admission honours "
        "them, expiry judged at the current time. PolicyException objects in the input "
        "count too.",
    ),
]

WithDefaultsOption = Annotated[
    bool,
    typer.Option(
        "--with-defaults",
        help="Load the packaged default policies too, beside --policies or ./policies (a "
        "policy of the same name there wins).",
    ),
]
