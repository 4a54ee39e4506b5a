"""The human report: a rich table of what each policy says, and a one-line summary.

Passing policies are not listed one by one (a Helm chart of thirty Services would drown
the violations); an object every policy passed gets a single "passed" row. PolicyExceptions
follow in their own table: each one's state, expiry and ticket, and how many findings it
turned into exemptions.

Below :data:`NARROW` columns the table would fold file paths into fragments nobody can
copy; each object is then a block instead: a heading line, its file:line on a line of its
own (wrapped by the terminal, not broken), and one line per finding.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from webhook.offline.results import ExceptionStatus, Finding, ObjectResult, Outcome, ScanReport
from webhook.policy.model.exceptions import ExceptionState

STYLES = {
    Outcome.DENY: "bold red",
    Outcome.WARN: "yellow",
    Outcome.AUDIT: "cyan",
    Outcome.PATCH: "blue",
    Outcome.PASS: "green",
    Outcome.EXEMPT: "magenta",
}
EXCEPTION_STYLES = {
    ExceptionState.ACTIVE: "green",
    ExceptionState.EXPIRING: "yellow",
    ExceptionState.EXPIRED: "dim",
    ExceptionState.NO_EXPIRY: "yellow",
}


# Under this width the six columns leave a path column too narrow to read.
NARROW = 120


def render_text(report: ScanReport, console: Console) -> None:
    if console.width < NARROW:
        _render_blocks(report, console)
    else:
        _render_table(report, console)
    if report.exceptions:
        console.print(_exceptions_table(report.exceptions))
    console.print(Text(report.summary(), style="bold red" if report.failed else "bold"))
    if report.failed and report.command == "check":
        console.print("Enforce policies would deny the objects above (exit code 1).")
    elif report.failed:
        console.print("Enforce policies are violated above (exit 1 with --fail-on-violation).")
    elif report.command == "check":
        console.print("Nothing Enforce would deny; Warn and Audit findings do not fail a check.")


def _render_blocks(report: ScanReport, console: Console) -> None:
    for result in report.objects:
        resource = result.resource
        where = f" in {resource.namespace}" if resource.namespace else ""
        shown = [f for f in result.findings if f.outcome is not Outcome.PASS]
        heading = Text(f"{resource.kind}/{resource.name}{where}", style="bold")
        if not shown:
            heading.append(f"  {Outcome.PASS.label}", style=STYLES[Outcome.PASS])
        console.print(heading)
        if resource.location is not None:
            # soft_wrap: the terminal wraps a long path, so it is still one copyable line.
            console.print(f"  {resource.location}", style="dim", soft_wrap=True,
                          highlight=False, markup=False)
        for finding in shown:
            console.print(_finding_line(finding))
    for finding in report.namespace_findings:
        heading = Text(f"Namespace/{finding.resource.name}", style="bold")
        console.print(heading)
        if finding.resource.location is not None:
            console.print(f"  {finding.resource.location}", style="dim", soft_wrap=True,
                          highlight=False, markup=False)
        console.print(_finding_line(finding))


def _finding_line(finding: Finding) -> Group:
    """``  denied policy (Enforce)`` and the message below it, wrapped with an indent."""
    message = finding.message
    if finding.exception is not None:
        message = f"would {finding.would}: {message}; admitted by {finding.exception.describe()}"
    line = Text("  ")
    line.append(finding.outcome.label, style=STYLES[finding.outcome])
    line.append(f" {finding.policy} ({finding.mode.value})")
    if not message:
        return Group(line)
    return Group(line, Padding(Text(message), (0, 0, 0, 4)))


def _render_table(report: ScanReport, console: Console) -> None:
    table = Table(show_lines=False, expand=False)
    for column in ("Resource", "Namespace", "Policy", "Mode", "Result", "Message"):
        table.add_column(column, overflow="fold")
    for result in report.objects:
        for row in _rows(result):
            table.add_row(*row)
    for finding in report.namespace_findings:
        table.add_row(*_finding_row(finding))
    if table.row_count:
        console.print(table)


def _rows(result: ObjectResult) -> list[tuple[str | Text, ...]]:
    shown = [f for f in result.findings if f.outcome is not Outcome.PASS]
    if not shown:
        passed = len(result.findings)
        message = (
            f"{passed} polic{'y' if passed == 1 else 'ies'} passed"
            if passed
            else ("no policy applies")
        )
        return [
            (
                _resource_cell(result.resource.kind, result.resource.name, result),
                result.resource.namespace,
                "-",
                "-",
                Text(Outcome.PASS.label, style=STYLES[Outcome.PASS]),
                message,
            )
        ]
    return [_finding_row(f, result) for f in shown]


def _finding_row(finding: Finding, result: ObjectResult | None = None) -> tuple[str | Text, ...]:
    resource = finding.resource
    message = finding.message
    if finding.exception is not None:
        message = f"would {finding.would}: {message}; admitted by {finding.exception.describe()}"
    return (
        _resource_cell(resource.kind, resource.name, result),
        resource.namespace or resource.name,
        finding.policy,
        finding.mode.value,
        Text(finding.outcome.label, style=STYLES[finding.outcome]),
        message,
    )


def _exceptions_table(statuses: list[ExceptionStatus]) -> Table:
    table = Table(title="PolicyExceptions", show_lines=False, expand=False)
    for column in ("Exception", "Policies", "State", "Expires", "Ticket", "Admits"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        exception = status.exception
        policies = ", ".join(sorted(exception.policies))
        if status.unknown_policies:
            policies += f" (no such policy: {', '.join(status.unknown_policies)})"
        table.add_row(
            exception.ref,
            policies,
            Text(status.state.value, style=EXCEPTION_STYLES[status.state]),
            exception.expires,
            exception.ticket or "-",
            "\n".join(f"{f.resource.ref} ({f.policy} would {f.would})" for f in status.admits)
            or "-",
        )
    return table


def _resource_cell(kind: str, name: str, result: ObjectResult | None) -> Text:
    cell = Text(f"{kind}/{name}")
    if result is not None and result.resource.location is not None:
        cell.append(f"\n{result.resource.location}", style="dim")
    return cell
