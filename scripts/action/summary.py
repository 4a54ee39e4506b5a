#!/usr/bin/env python3
"""The GitHub Action's job summary: `edgewarden check -o json`'s report as Markdown.

    python summary.py REPORT.json >> "$GITHUB_STEP_SUMMARY"

One line saying what the check decided, then a table of every finding that is not a pass
(deny, warn, audit, patch, exempt), denials first, each linked to the file and line it came
from when the run is in a GitHub repository (GITHUB_SERVER_URL, GITHUB_REPOSITORY,
GITHUB_SHA). Standard library only: it runs with whatever Python runs edgewarden.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# Job summaries are capped at 1 MiB per step: a few hundred rows say what there is to say.
MAX_ROWS = 200
ORDER = {"deny": 0, "error": 0, "warn": 1, "audit": 2, "patch": 3, "exempt": 4}
MARK = {"deny": ":x:", "error": ":x:", "warn": ":warning:", "audit": ":memo:",
        "patch": ":wrench:", "exempt": ":shield:"}


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell: no pipe, no line break, no HTML."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;").replace("\r", " ").replace("\n", " "))


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def link(location: dict[str, Any] | None) -> str:
    if not location or not location.get("file"):
        return ""
    file = str(location["file"])
    line = location.get("line")
    shown = f"{file}:{line}" if line else file
    server = os.environ.get("GITHUB_SERVER_URL")
    repository = os.environ.get("GITHUB_REPOSITORY")
    sha = os.environ.get("GITHUB_SHA")
    # A render (<stdin>, <kustomize DIR>, <helm template ...>) is no file to link to.
    if file.startswith("<") or Path(file).is_absolute() or not (server and repository and sha):
        return cell(shown)
    anchor = f"#L{line}" if line else ""
    return f"[{cell(shown)}]({server}/{repository}/blob/{sha}/{file}{anchor})"


def render(report: dict[str, Any]) -> str:
    summary = report.get("summary", {})
    findings = summary.get("findings", {})
    objects = int(summary.get("objects", 0))
    denied = int(summary.get("denied", 0))
    counts = (f"{plural(int(findings.get('warn', 0)), 'warning')}, "
              f"{int(findings.get('audit', 0))} audited, "
              f"{int(findings.get('patch', 0))} would patch")
    lines = ["## edgewarden check", ""]
    if summary.get("failed"):
        lines.append(f":x: **{denied} of {plural(objects, 'object')} would be denied** by "
                     f"Enforce policies; {counts}.")
    else:
        lines.append(f":white_check_mark: **{plural(objects, 'object')} judged, nothing "
                     f"Enforce would deny**; {counts}.")
    skipped = summary.get("skipped") or {}
    if skipped:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(skipped.items()))
        lines += ["", f"Not governed by any policy, not judged: {cell(kinds)}."]
    rows = []
    for result in report.get("results", []):
        resource = result.get("resource", {})
        for finding in result.get("findings", []):
            if finding.get("result") == "pass":
                continue
            rows.append((ORDER.get(finding.get("result"), 5), resource, finding,
                         result.get("location")))
    rows.sort(key=lambda row: row[0])  # stable: the input's order within each result
    if rows:
        lines += ["", "| Result | Resource | Namespace | Policy | Mode | Message | Where |",
                  "|---|---|---|---|---|---|---|"]
        for _, resource, finding, location in rows[:MAX_ROWS]:
            result = str(finding.get("result", ""))
            lines.append("| " + " | ".join([
                f"{MARK.get(result, '')} {cell(result)}".strip(),
                cell(f"{resource.get('kind', '')}/{resource.get('name', '')}"),
                cell(resource.get("namespace") or ""),
                cell(finding.get("policy", "")),
                cell(finding.get("mode", "")),
                cell(finding.get("message", "")),
                link(location),
            ]) + " |")
        if len(rows) > MAX_ROWS:
            lines += ["", f"... and {len(rows) - MAX_ROWS} more findings: see the log."]
    return "\n".join(lines) + "\n\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: summary.py REPORT.json", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"summary.py: cannot read {argv[1]}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
