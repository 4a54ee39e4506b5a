"""Writing what a command produced: to stdout or ``--out FILE``, in the ``-o`` format.

One set of rules for every command: ``-o`` picks the format, ``--out`` the file; with
``--out`` a one-line summary goes to stderr so stdout stays clean for pipes.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from webhook.cli.app import console, err_console, make_console
from webhook.errors import EdgewardenError

if TYPE_CHECKING:
    from webhook.offline.results import ScanReport

# Piped or captured text gets a wide table rather than the 80-column default.
PLAIN_WIDTH = 160

# Format -> (module, function) of webhook.offline.reports, imported when that format is asked.
REPORT_RENDERERS = {
    "json": ("json", "render_json"),
    "yaml": ("json", "render_yaml"),
    "junit": ("junit", "render_junit"),
    "sarif": ("sarif", "render_sarif"),
    "policyreport": ("policyreport", "render_policyreport"),
}


def write(path: Path, text: str) -> None:
    """``text`` into ``path``, its folder made first (CI writes into results folders)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise EdgewardenError(f"{path}: cannot write: {error.strerror or error}") from None


def deliver(text: str, out: Path | None, summary: str | None = None) -> None:
    """``text`` to stdout, or to ``out`` with ``summary`` and "wrote FILE" on stderr."""
    if out is None:
        typer.echo(text, nl=False)
        return
    write(out, text)
    err_console.print(f"{summary}\nwrote {out}" if summary else f"wrote {out}", highlight=False)


def structured(data: Any, output: str) -> str:
    """One document as ``json`` or ``yaml``."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def documents(objects: Sequence[dict[str, Any]], output: str) -> str:
    """Kubernetes objects as multi-document YAML, or as one JSON ``List`` (what kubectl
    prints and ``kubectl apply -f`` reads for several objects)."""
    if output == "json":
        return structured({"apiVersion": "v1", "kind": "List", "items": list(objects)}, "json")
    return yaml.safe_dump_all(list(objects), sort_keys=False, explicit_start=True)


def render_report(report: ScanReport, output: str) -> str | None:
    """A machine format rendered to text; None for ``text`` (printed by :func:`emit`)."""
    if output not in REPORT_RENDERERS:
        return None
    module, function = REPORT_RENDERERS[output]
    render = getattr(importlib.import_module(f"webhook.offline.reports.{module}"), function)
    text: str = render(report)
    return text


def emit(report: ScanReport, output: str, out: Path | None, rendered: str | None) -> None:
    """Print or write a scan report; ``rendered`` is :func:`render_report`'s result."""
    from webhook.offline.reports.text import render_text

    if rendered is not None:
        deliver(rendered, out, report.summary())
        return
    if out is None:
        render_text(report, console if console.is_terminal else make_console(width=PLAIN_WIDTH))
        return
    buffer = io.StringIO()
    render_text(report, make_console(file=buffer, width=PLAIN_WIDTH, color_system=None))
    write(out, buffer.getvalue())
