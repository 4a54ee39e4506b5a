"""Options several commands share, declared once so they mean the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from webhook.policy.model import INTERNAL_LB_FLAVOURS

FLAVOUR_ENVIRONMENT = "EDGEWARDEN_INTERNAL_LB_FLAVOUR"


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
ExceptionsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--exceptions",
        help="PolicyException file or folder (repeatable); honoured as admission honours "
        "them, expiry judged at the current time. PolicyException objects in the input "
        "count too.",
    ),
]
