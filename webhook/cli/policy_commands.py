"""``edgewarden validate``, ``test`` and ``policies export``: policy files and their suites."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.exception_options import (
    DEFAULT_MAX_EXCEPTION_DAYS,
    ExceptionNamespaceOption,
    MaxExceptionDaysOption,
    offline_rules,
)
from webhook.cli.options import ExceptionsOption
from webhook.cli.policy_source import packaged_policies, policy_paths
from webhook.errors import EdgewardenError, PolicyLoadError

if TYPE_CHECKING:
    from webhook.suites.runner import SuiteResult


@app.command(
    epilog=examples(
        "edgewarden validate policies/",
        ("edgewarden validate", "./policies, else the packaged default policies"),
        ("edgewarden validate - < policies/deny-external-ips.yaml", "from standard input"),
    ),
)
@user_errors
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Policy files or folders (default: ./policies, else the packaged "
                       "defaults)."),
    ] = None,
) -> None:
    """Check policy files; every problem is reported with file, line and field."""
    from webhook.policy.loader import load_policies  # see webhook/cli/__init__.py: lazy

    try:
        policies = load_policies(*policy_paths(paths))
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
                ("unique", policy.unique is not None),
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
    for warning in policies.warnings:
        err_console.print(f"[yellow]![/] {warning}", highlight=False)
    console.print(f"{len(policies)} policies valid in {len(policies.sources)} file(s).")


@app.command(
    "test",
    epilog=examples(
        "edgewarden test policies/",
        ("edgewarden test policies/ --junit test-results/policies.xml", "for CI"),
        ("edgewarden test examples/flavours/ -v", "list the passing cases too"),
    ),
)
@user_errors
def test_suites(
    path: Annotated[
        Path | None,
        typer.Argument(help="A suite file or a folder searched for *.test.yaml (default: "
                       "./policies, else the packaged defaults)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List passing cases too.")
    ] = False,
    exceptions: ExceptionsOption = None,
    exception_namespace: ExceptionNamespaceOption = None,
    max_exception_days: MaxExceptionDaysOption = DEFAULT_MAX_EXCEPTION_DAYS,
) -> None:
    """Run policy test suites; exit 1 when any case fails."""
    from webhook.policy.documents import load_exceptions
    from webhook.policy.exceptions import NO_EXCEPTIONS
    from webhook.suites.junit import render_junit
    from webhook.suites.runner import run_path

    if path is None:
        [path] = policy_paths(None)
    honoured = load_exceptions(*exceptions) if exceptions else NO_EXCEPTIONS
    # Judged per case, at the case's instant: a suite pins time (`at:`).
    results = run_path(path, exceptions=honoured,
                       rules=offline_rules(exception_namespace, max_exception_days))
    if not results:
        err_console.print(f"no test suites (*.test.yaml) found under {path}")
        raise typer.Exit(1)
    for note in sorted({n for r in results for n in r.ignored_exceptions}):
        err_console.print(f"note: {note}", highlight=False, markup=False)
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


policies_app = typer.Typer(
    name="policies",
    help="The default policies packaged with edgewarden.",
    no_args_is_help=True,
    epilog=examples("edgewarden policies export my-policies"),
)
app.add_typer(policies_app, name="policies")


@policies_app.command(
    "export",
    epilog=examples(
        ("edgewarden policies export my-policies && edgewarden test my-policies",
         "a copy to adapt, which passes its own suites"),
    ),
)
@user_errors
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write (created if missing).")],
    force: Annotated[bool, typer.Option("--force", help="Replace files already there.")] = False,
) -> None:
    """Write the packaged default policies, their test suites and fixtures into DIRECTORY."""
    source = packaged_policies()
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    pairs = [(file, directory / file.relative_to(source)) for file in files]
    if directory.exists() and not directory.is_dir():
        raise EdgewardenError(f"{directory}: exists and is not a folder")
    clashes = [target for _, target in pairs if target.exists()]
    if clashes and not force:
        raise EdgewardenError(
            f"{directory}: {len(clashes)} file(s) would be replaced (first: {clashes[0]}); "
            "pass --force to replace them"
        )
    try:
        for file, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    except OSError as error:
        raise EdgewardenError(f"{directory}: cannot write: {error.strerror or error}") from None
    suites = sum(1 for file, _ in pairs if file.name.endswith((".test.yaml", ".test.yml")))
    policies = sum(1 for file, _ in pairs if file.parent == source) - suites
    console.print(
        f"wrote {policies} policy files, {suites} test suites and {len(pairs) - policies - suites}"
        f" fixtures to {directory}; check them with: edgewarden test {directory}",
        highlight=False,
    )
