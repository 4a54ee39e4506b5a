"""``edgewarden validate``, ``test`` and ``policies export``: policy files and their suites."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.exception_options import (
    DEFAULT_MAX_EXCEPTION_DAYS,
    ExceptionNamespaceOption,
    MaxExceptionDaysOption,
    offline_rules,
)
from webhook.cli.options import ExceptionsOption, out_file, output_format
from webhook.cli.output import deliver, structured, write
from webhook.cli.policy_source import LOCAL_POLICIES, packaged_policies, policy_paths
from webhook.errors import (
    EdgewardenError,
    ExitCode,
    PolicyLoadError,
    PolicyProblem,
    TestSuiteError,
)

if TYPE_CHECKING:
    from webhook.policy.model.policy import Policy, PolicySet
    from webhook.suites.runner import SuiteResult


@app.command(
    epilog=examples(
        "edgewarden validate policies/",
        ("edgewarden validate", "./policies, else the packaged default policies"),
        ("edgewarden validate - < policies/deny-external-ips.yaml", "from standard input"),
        ("edgewarden validate policies/ -o json", "for scripts: policies, problems, warnings"),
    ),
)
@user_errors
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Policy files or folders (default: ./policies, else the packaged "
                       "defaults)."),
    ] = None,
    output: Annotated[str, output_format("text", "json")] = "text",
    out: Annotated[Path | None, out_file("the JSON report")] = None,
) -> None:
    """Check policy files; every problem is reported with file, line and field.

    Exit 1 when a policy file has a problem; exit 2 when a path does not exist.
    """
    from webhook.policy.load.loader import load_policies  # see webhook/cli/__init__.py: lazy

    chosen = policy_paths(paths)
    _exist(chosen)
    try:
        policies = load_policies(*chosen)
    except PolicyLoadError as error:
        if output == "json":
            deliver(structured(_validation(None, error.problems, error.warnings), "json"), out,
                    f"{len(error.problems)} problem(s)")
            raise typer.Exit(ExitCode.FOUND) from None
        for problem in error.problems:
            err_console.print(f"[red]✗[/] {problem}", highlight=False)
        for warning in error.warnings:  # found in the same run: one pass shows everything
            err_console.print(f"[yellow]![/] {warning}", highlight=False)
        err_console.print(f"{len(error.problems)} problem(s); nothing was loaded.")
        raise typer.Exit(ExitCode.FOUND) from None
    if output == "json":
        deliver(structured(_validation(policies, []), "json"), out,
                f"{len(policies)} policies valid")
        return
    for policy in policies.policies:
        mode = policy.mode.value if policy.validates else "Mutate"
        console.print(
            f"[green]✓[/] {policy.name} ({mode}; "
            f"{'/'.join(sorted(policy.match.kinds))}; {', '.join(_blocks(policy))}) "
            f"{policy.source}",
            highlight=False,
        )
    for warning in policies.warnings:
        err_console.print(f"[yellow]![/] {warning}", highlight=False)
    console.print(f"{len(policies)} policies valid in {len(policies.sources)} file(s).")


def _exist(paths: list[Path]) -> None:
    """A path that is not there is a usage error (exit 2), not a policy problem (exit 1)."""
    for path in paths:
        if str(path) != "-" and not path.exists():
            raise EdgewardenError(f"{path}: no such file or folder")


def _blocks(policy: Policy) -> list[str]:
    """The blocks the policy holds, in the order they run (plug-in blocks included)."""
    from webhook.policy.blocks import registry  # loaded with the policies, not the CLI

    return [block.name for block in registry.blocks() if block.data(policy) is not None]


def _problem(problem: PolicyProblem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "field": problem.field,
            "message": problem.message}


def _validation(policies: PolicySet | None, problems: list[PolicyProblem],
                warnings: list[PolicyProblem] | None = None) -> dict[str, Any]:
    """``validate -o json``: every policy loaded, or every problem found (never both)."""
    return {
        "valid": policies is not None,
        "files": list(policies.sources) if policies is not None else [],
        "policies": [
            {
                "name": policy.name,
                "mode": policy.mode.value if policy.validates else "Mutate",
                "kinds": sorted(policy.match.kinds),
                "blocks": _blocks(policy),
                "file": policy.source.file,
                "line": policy.source.line,
            }
            for policy in (policies.policies if policies is not None else ())
        ],
        "problems": [_problem(problem) for problem in problems],
        "warnings": [_problem(w) for w in (
            policies.warnings if policies is not None else (warnings or ()))],
    }


@app.command(
    "test",
    epilog=examples(
        "edgewarden test policies/",
        ("edgewarden test policies/ examples/flavours/", "several folders or files"),
        ("edgewarden test policies/ --case '*NodePort*'", "only the cases named so (a glob)"),
        ("edgewarden test policies/ -o junit --out test-results/policies.xml", "for CI"),
        ("edgewarden test policies/ -o json", "for scripts"),
        ("edgewarden test examples/flavours/ -v", "list the passing cases too"),
    ),
)
@user_errors
def test_suites(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Suite files, or folders searched for *.test.yaml (default: "
                       "./policies, else the packaged defaults)."),
    ] = None,
    output: Annotated[str, output_format("text", "json", "junit")] = "text",
    out: Annotated[Path | None, out_file("the report")] = None,
    cases: Annotated[
        list[str] | None,
        typer.Option(
            "--case", metavar="PATTERN",
            help="Run only the cases whose name matches this glob (repeatable; e.g. "
            "'*NodePort*'). Matching nothing is an error.",
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE",
                     help="Also write JUnit XML here (beside the -o output)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List passing cases too.")
    ] = False,
    exceptions: ExceptionsOption = None,
    exception_namespace: ExceptionNamespaceOption = None,
    max_exception_days: MaxExceptionDaysOption = DEFAULT_MAX_EXCEPTION_DAYS,
) -> None:
    """Run policy test suites; exit 1 when any case fails, 2 when there is nothing to run."""
    from webhook.policy.load.documents import load_exceptions
    from webhook.policy.model.exceptions import NO_EXCEPTIONS
    from webhook.suites.json_report import render_json
    from webhook.suites.junit import render_junit
    from webhook.suites.runner import case_filter, run_paths

    # ./policies as is: its suites test what it holds, so no note on missing defaults.
    chosen = list(paths) if paths else (
        [LOCAL_POLICIES] if LOCAL_POLICIES.exists() else policy_paths(None))
    honoured = load_exceptions(*exceptions) if exceptions else NO_EXCEPTIONS
    # Judged per case, at the case's instant: a suite pins time (`at:`).
    results = run_paths(chosen, exceptions=honoured, select=case_filter(cases or []),
                        rules=offline_rules(exception_namespace, max_exception_days))
    where = ", ".join(str(path) for path in chosen)
    if not results and cases:
        patterns = ", ".join(repr(c) for c in cases)
        raise TestSuiteError(f"no test case under {where} matches --case {patterns}")
    if not results:
        raise TestSuiteError(f"no test suites (*.test.yaml) found under {where}")
    for note in sorted({n for r in results for n in r.ignored_exceptions}):
        err_console.print(f"note: {note}", highlight=False, markup=False)
    judged_with = {p.name: p for r in results for p in r.policies}
    if judged_with:
        from webhook.native.render import placement_note

        err_console.print(f"note: {placement_note(list(judged_with.values()))}",
                          highlight=False, markup=False)
    if output == "text":
        if out is not None:
            raise EdgewardenError("--out needs -o json or -o junit (the text goes to the "
                                  "terminal)")
        _print_results(results, verbose)
    else:
        rendered = render_json(results) if output == "json" else render_junit(results)
        cases_run = sum(len(suite.cases) for suite in results)
        deliver(rendered, out, f"{cases_run} case(s) in {len(results)} suite(s)")
    if junit is not None:
        write(junit, render_junit(results))
    if not all(r.passed for r in results):
        raise typer.Exit(ExitCode.FOUND)


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
