"""``--help`` that fits a narrow terminal without cutting an option name.

Typer lays options out in six columns (name, short name, ``--no-`` name, its short name,
type, help). Below about 120 columns ``serve``'s options do not fit, and Rich cuts the
widest cells to make room: ``--evaluation-bud…``, which nobody can copy. Each option gets
two columns instead, at every width: its names and value word, one per line and never
cut, and the help beside them, wrapped.

Typer has no hook for this; its module-level panel function is replaced once, when the
command line is imported (Typer is pinned in constraints.txt, and
tests/cli/test_help_width.py renders every command's help at 80 columns).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text
from typer import _click, rich_utils


def _names(param: Any, ctx: _click.Context) -> Text:
    """The names and value word of one parameter, a line each: ``--policies, -p`` /
    ``  PATH``; a flag's ``--no-`` form on its own line."""
    text = Text(no_wrap=True, overflow="ignore")
    if param.param_type_name == "argument":
        # An argument's name is its value word (its metavar when it has one, e.g. OLD NEW).
        text.append(param.metavar or param.display_name_raw.upper(),
                    style=rich_utils.STYLE_OPTION)
        if param.required:
            text.append(" " + rich_utils.REQUIRED_SHORT_STRING,
                        style=rich_utils.STYLE_REQUIRED_SHORT)
        return text
    else:
        longs = [o for o in param.opts if o.startswith("--")]
        shorts = [o for o in param.opts if not o.startswith("--")]
        text.append(", ".join(longs + shorts), style=rich_utils.STYLE_OPTION)
        negatives = list(param.secondary_opts)
        if negatives:
            text.append("\n" + ", ".join(negatives), style=rich_utils.STYLE_NEGATIVE_OPTION)
    if param.required:
        text.append(" " + rich_utils.REQUIRED_SHORT_STRING, style=rich_utils.STYLE_REQUIRED_SHORT)
    shown = param.display_type_rich(ctx=ctx) or ""
    limits = param._get_number_range_help_str() if hasattr(param, "_get_number_range_help_str") \
        else None
    if limits:
        shown += rich_utils.RANGE_STRING.format(limits)
    if shown:
        text.append("\n  " + shown, style=rich_utils.STYLE_TYPES)
    return text


def print_options_panel(
    *, name: str, params: list[Any], ctx: _click.Context, markup_mode: Any, console: Console
) -> None:
    """Typer's options panel as two columns: names never cut, help wrapped beside them."""
    for param in params:
        # A flag takes no value; Typer would show ``<bool>`` (the help option is made late,
        # so webhook.cli.app.values_in_words never sees it).
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    if not params:
        return
    table = Table(
        Column(no_wrap=True),  # never shrunk: the help column gives way instead
        Column(ratio=1, overflow="fold"),
        show_header=False, expand=True, box=None, padding=(0, 1), pad_edge=False,
    )
    for param in params:
        table.add_row(
            _names(param, ctx),
            rich_utils._get_parameter_help(param=param, ctx=ctx, markup_mode=markup_mode),
        )
    console.print(Panel(table, border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER,
                        title=name, title_align=rich_utils.ALIGN_OPTIONS_PANEL))


def install() -> None:
    rich_utils._print_options_panel = print_options_panel
