"""``edgewarden diff`` rendered: a table for a terminal, JSON, and Markdown for a pull request.

The Markdown is a pull-request comment: a verdict line first, then the changes (new denials
first) up to ``max_rows``, then counts per policy, all within GitHub's comment limits
(messages are cut at :data:`MESSAGE_CHARS`; ``-o json`` keeps everything whole).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from webhook import __version__
from webhook.offline.diff import Change, DiffReport, PolicyChange
from webhook.offline.reports.json import API_VERSION

MESSAGE_CHARS = 160
CONTEXT_CHARS = 40  # what is kept before the first difference of two long decisions
STYLES = {
    Change.NEWLY_DENIED: "bold red",
    Change.NEWLY_ALLOWED: "green",
    Change.NEWLY_WARNED: "yellow",
    Change.NO_LONGER_WARNED: "green",
    Change.CHANGED_AUDIT: "cyan",
    Change.CHANGED_PATCH: "blue",
    Change.CHANGED_MESSAGE: "default",
}


def ordered(report: DiffReport) -> list[PolicyChange]:
    """New denials of admitted objects first, then by kind of change, else input order."""
    rank = {change: index for index, change in enumerate(Change)}
    return sorted(report.changes, key=lambda c: (not c.new_denial, rank[c.change]))


# -- text --------------------------------------------------------------------------------------


def render_text(report: DiffReport, console: Console, max_rows: int) -> None:
    console.print(Text(f"{report.base} -> {report.head} ({report.source})", style="bold"))
    console.print(f"Policies: {report.policies.describe()}", highlight=False)
    changes = ordered(report)
    if changes:
        table = Table(expand=False)
        table.add_column("Change", overflow="fold", max_width=9)
        for column in ("Object, policy", "Before", "After"):
            table.add_column(column, overflow="fold", ratio=1)
        for change in changes[:max_rows]:
            subject = change.subject.ref
            if change.subject.request:
                subject += f" ({change.subject.request})"
            before, after = _sides(change)
            table.add_row(Text(change.change.value, style=STYLES[change.change]),
                          f"{subject}\n{change.policy}", before, after)
        console.print(table)
        if len(changes) > max_rows:
            console.print(f"... and {len(changes) - max_rows} more (--max-rows, or -o json for "
                          "every change)", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    console.print(Text(report.summary(), style="bold red" if report.failed else "bold"))
    if report.failed:
        console.print("The new policies would deny what the old ones admit (exit code 1; "
                      "--allow-new-denials to accept).", highlight=False)


# -- JSON --------------------------------------------------------------------------------------


def diff_dict(report: DiffReport) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyDiff",
        "tool": {"name": "edgewarden", "version": __version__},
        "base": report.base,
        "head": report.head,
        "source": report.source,
        "summary": {
            "judged": report.judged,
            "changes": report.counts(),
            "newDenials": len(report.new_denials),
            "failed": report.failed,
        },
        "policies": {"added": list(report.policies.added),
                     "removed": list(report.policies.removed),
                     "changed": list(report.policies.changed)},
        "byPolicy": report.by_policy(),
        "changes": [_change(change) for change in ordered(report)],
        "notes": list(report.notes),
    }


def _change(change: PolicyChange) -> dict[str, Any]:
    resource = change.subject.resource
    return {
        "change": change.change.key,
        "resource": {"apiVersion": resource.api_version, "kind": resource.kind,
                     "namespace": resource.namespace, "name": resource.name},
        "where": change.subject.where,
        **({"request": change.subject.request} if change.subject.request else {}),
        "policy": change.policy,
        "newDenial": change.new_denial,
        "before": {"admitted": change.admitted_before, **change.before.as_dict()},
        "after": {"admitted": change.admitted_after, **change.after.as_dict()},
    }


def render_json(report: DiffReport) -> str:
    return json.dumps(diff_dict(report), indent=2) + "\n"


# -- Markdown ----------------------------------------------------------------------------------


def render_markdown(report: DiffReport, max_rows: int) -> str:
    lines = ["### edgewarden diff", ""]
    noun = "requests" if report.source == "audit log" else "objects"
    lines.append(f"`{_code(report.base)}` → `{_code(report.head)}`, over {report.judged} "
                 f"{noun} ({report.source}). Policies: {_cell(report.policies.describe())}.")
    lines.append("")
    denials = report.new_denials
    if denials:
        lines.append(f"**{len(denials)} {noun if len(denials) != 1 else noun[:-1]} admitted "
                     "before would be denied now.**")
    else:
        lines.append("Nothing admitted before would be denied now.")
    lines.append("")
    changes = ordered(report)
    if changes:
        lines += ["| Change | Object | Policy | Before | After |", "|---|---|---|---|---|"]
        for change in changes[:max_rows]:
            subject = f"`{_code(change.subject.ref)}`"
            detail = ", ".join(part for part in (change.subject.request, change.subject.where)
                               if part)
            if detail:
                subject += f" <br>{_cell(detail)}"
            kind = change.change.value
            before, after = _sides(change)
            lines.append(
                f"| {f'**{kind}**' if change.new_denial else kind}"
                f" | {subject} | {_cell(change.policy)} | {_cell(before)} | {_cell(after)} |"
            )
        if len(changes) > max_rows:
            lines += ["", f"…and {len(changes) - max_rows} more change(s) not shown "
                          "(`--max-rows`, or `-o json` for all)."]
        lines += ["", "| Policy | newly denied | newly allowed | newly warned | other |",
                  "|---|---:|---:|---:|---:|"]
        main = (Change.NEWLY_DENIED, Change.NEWLY_ALLOWED, Change.NEWLY_WARNED)
        for policy, counts in report.by_policy().items():
            other = sum(n for key, n in counts.items() if key not in {c.key for c in main})
            cells = " | ".join(str(counts[c.key]) for c in main)
            lines.append(f"| {_cell(policy)} | {cells} | {other} |")
    else:
        lines.append("No object's decision changes.")
    if report.notes:
        lines.append("")
        lines += [f"> {_cell(note)}" for note in report.notes]
    lines += ["", f"<sub>{_cell(report.summary())}</sub>", ""]
    return "\n".join(lines)


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _sides(change: PolicyChange) -> tuple[str, str]:
    """Both decisions, cut to fit; when both are long and start alike (a message whose end
    changed), each starts shortly before the first difference so that it shows."""
    before, after = change.before.describe(), change.after.describe()
    if max(len(before), len(after)) <= MESSAGE_CHARS:
        return before, after
    same = 0
    for old, new in zip(before, after, strict=False):
        if old != new:
            break
        same += 1
    start = max(0, same - CONTEXT_CHARS)
    if start < MESSAGE_CHARS // 2:
        return _cut(before), _cut(after)
    return _cut("…" + before[start:]), _cut("…" + after[start:])


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (and inert: no HTML, no mentions, no links)."""
    text = " ".join(text.split())
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"),
                          ("@", "@\u200b"), ("`", "\\`"), ("*", "\\*"), ("_", "\\_"),
                          ("[", "\\["), ("]", "\\]")):
        text = text.replace(char, escaped)
    return text


def _code(text: str) -> str:
    """Text inside a code span: backticks cannot be escaped there, so they go."""
    return " ".join(text.replace("`", "'").split())
