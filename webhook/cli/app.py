"""The Typer application and the one place user-facing errors become exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from webhook.errors import EdgewardenError

app = typer.Typer(
    name="edgewarden",
    help="Policy-as-code admission webhook for Kubernetes Services and Ingresses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Print an EdgewardenError as a message (no traceback) and exit 2."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except EdgewardenError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper
