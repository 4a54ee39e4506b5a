"""The Typer application, its consoles, and the one place user-facing errors become exit codes."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from typer import _click
from typer.core import TyperGroup

from webhook import __version__
from webhook.cli import help_layout
from webhook.cli.examples import examples
from webhook.errors import EdgewardenError, ExitCode

# How --help lists the commands: what a newcomer reaches for first comes first.
COMMAND_ORDER = (
    "serve", "certs", "webhook-config",
    "check", "pre-commit", "audit", "report", "quota", "export",
    "validate", "test", "policies",
    "version",
)


class _OrderedGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built once per run, with every subcommand (and sub-group) already attached.
        values_in_words(self)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


# Typer shows a value's Python type (``<list[Path]>``, ``<str>``, ``<bool>`` even for a
# flag); help reads better, and fits 80 columns, with the words command lines use.
_WORDS = {"path": "PATH", "file": "FILE", "dir": "DIR", "str": "TEXT", "int": "INTEGER",
          "float": "NUMBER", "datetime": "TIME"}
_TYPE = re.compile(r"^<(?:list\[)?(?P<type>[^\]>]*?)(?: range)?\]?>$")


def value_word(shown: str) -> str:
    """The word for what Typer shows as a value's type: ``<list[Path]>`` -> ``PATH``."""
    match = _TYPE.match(shown)
    if match is None:
        return shown
    inner = match["type"]
    return _WORDS.get(inner.lower(), inner)  # choices (``Fail|Ignore``) stay as they are


def values_in_words(command: _click.Command) -> None:
    """Every parameter of ``command`` and its subcommands shows a word, not a Python type;
    a flag shows nothing (it takes no value). An explicit metavar is kept."""
    ctx = _click.Context(command)
    for param in command.params:
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            word = ""
        else:
            shown = param.display_type(ctx) if hasattr(param, "display_type") else None
            if not shown:
                continue
            word = value_word(shown)
        if param.param_type_name == "argument":
            # An argument's metavar would rename it; only the type column changes.
            setattr(param, "display_type_rich", lambda ctx, word=word: word)  # noqa: B010
        else:
            param.metavar = word
    for sub in getattr(command, "commands", {}).values():
        values_in_words(sub)


app = typer.Typer(
    name="edgewarden",
    cls=_OrderedGroup,
    help="Policy-as-code admission webhook for Kubernetes Services and Ingresses.",
    no_args_is_help=True,
    # Typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples(
        ("edgewarden serve --dev", "try the webhook on a laptop (serves until Ctrl-C)"),
        ("edgewarden check -f policies/fixtures/manifests/production-exposed.yaml",
         "exit 1: judge manifests as kubectl apply would send them"),
        ("edgewarden audit --cluster-state examples/cluster-state.yaml", "judge what runs"),
        ("edgewarden check --help", "every command's help ends with examples"),
    ),
)


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): set and not empty means no colour."""
    return bool(os.environ.get("NO_COLOR"))


def make_console(*, stderr: bool = False, **options: Any) -> Console:
    """A console that honours NO_COLOR fully.

    Rich alone drops colours under NO_COLOR but still writes bold and dim escapes, which a
    forced terminal (FORCE_COLOR, CI log viewers) would then show as raw ``ESC[1m``;
    without a colour system it writes no style escapes at all.
    """
    if no_color():
        options["color_system"] = None
    options.setdefault("soft_wrap", True)
    return Console(stderr=stderr, **options)


console = make_console()
err_console = make_console(stderr=True)

help_layout.install()

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Print an EdgewardenError as a message (no traceback) and exit 2 (ExitCode.USAGE:
    the command could not do its job; docs/cli.md has the table)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except EdgewardenError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
            raise typer.Exit(ExitCode.USAGE) from None

    return wrapper


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"edgewarden {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit (`edgewarden version -o json` for more).",
        ),
    ] = False,
) -> None:
    # No docstring on purpose: Typer would show it instead of the application's help.
    del version


def apply_no_color() -> None:
    """Make Typer's own help and usage-error output honour NO_COLOR too.

    Typer draws them with consoles of its own whose colour system is a module setting; it
    is read at each drawing, so setting it before the app runs covers every screen.
    """
    if no_color():
        from typer import rich_utils

        rich_utils.COLOR_SYSTEM = None
