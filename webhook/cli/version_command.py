"""``edgewarden version`` (``--version`` prints the same first line)."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from webhook import __version__
from webhook.cli.app import app
from webhook.cli.examples import examples
from webhook.cli.options import output_format
from webhook.cli.output import structured


@app.command(
    epilog=examples(
        "edgewarden version",
        ("edgewarden version -o json", "for bug reports and scripts"),
        "edgewarden --version",
    ),
)
def version(output: Annotated[str, output_format("text", "json", "yaml")] = "text") -> None:
    """The version of edgewarden, and of the Python running it."""
    if output == "text":
        typer.echo(f"edgewarden {__version__}")
        return
    info = {"name": "edgewarden", "version": __version__, "python": platform.python_version()}
    typer.echo(structured(info, output), nl=False)
