"""``edgewarden validate`` and ``edgewarden test``: policy files and their suites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.options import ExceptionsOption
from webhook.errors import PolicyLoadError
from webhook.policy.documents import load_exceptions
from webhook.policy.exceptions import NO_EXCEPTIONS
from webhook.policy.loader import load_policies
from webhook.suites.junit import render_junit
from webhook.suites.runner import SuiteResult, run_path


@app.command()
@user_errors
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Policy files or folders.")],
) -> None:
    """Check policy files; every problem is reported with file, line and field."""
    try:
        policies = load_policies(*paths)
    except PolicyLoadError as error:
        for problem in error.problems:
            err_console.print(f"[red]✗[/] {problem}", highlight=False)
        err_console.print(f"{len(error.problems)} problem(s); nothing was loaded.")
        raise typer.Exit(1) from None
    for policy in policies.policies:
        what = ", ".join(
            part
            for part, present in (
                ("validations", bool(policy.validations)),
                ("limit", policy.limit is not None),
                ("mutations", policy.mutates),
            )
            if present
        )
        mode = policy.mode.value if policy.validates else "Mutate"
        console.print(
            f"[green]✓[/] {policy.name} ({mode}; "
            f"{'/'.join(sorted(policy.match.kinds))}; {what}) {policy.source}",
            highlight=False,
        )
    console.print(f"{len(policies)} policies valid in {len(policies.sources)} file(s).")


@app.command("test")
@user_errors
def test_suites(
    path: Annotated[
        Path, typer.Argument(help="A suite file or a folder searched for *.test.yaml.")
    ] = Path("policies"),
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List passing cases too.")
    ] = False,
    exceptions: ExceptionsOption = None,
) -> None:
    """Run policy test suites; exit 1 when any case fails."""
    honoured = load_exceptions(*exceptions) if exceptions else NO_EXCEPTIONS
    results = run_path(path, exceptions=honoured)
    if not results:
        err_console.print(f"no test suites (*.test.yaml) found under {path}")
        raise typer.Exit(1)
    _print_results(results, verbose)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(render_junit(results), encoding="utf-8")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def _print_results(results: list[SuiteResult], verbose: bool) -> None:
    passed = failed = 0
    for suite in results:
        mark = "[green]PASS[/]" if suite.passed else "[red]FAIL[/]"
        console.print(f"{mark} {suite.suite} ({suite.file})", highlight=False)
        if suite.error:
            failed += 1
            console.print(f"    [red]suite could not run:[/] {suite.error}", highlight=False)
        for case in suite.cases:
            if case.passed:
                passed += 1
                if verbose:
                    console.print(f"    [green]✓[/] {case.case}", highlight=False)
                continue
            failed += 1
            console.print(f"    [red]✗[/] {case.case} ({case.file}:{case.line})", highlight=False)
            for line in case.failures:
                console.print(f"        {line}", highlight=False, markup=False)
    console.print(f"{passed} passed, {failed} failed", highlight=False)
