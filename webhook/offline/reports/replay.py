"""``edgewarden replay`` rendered: the requests where the replay differs from the log, those
it could not rebuild, and the agreement; or every request as JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from webhook import __version__
from webhook.offline.replay import Agreement, Replayed, ReplayReport
from webhook.offline.reports.json import API_VERSION


def render_text(report: ReplayReport, console: Console, *, every: bool = False) -> None:
    """The differing requests (``every``: all of them), then those not rebuilt, then counts."""
    shown = report.requests if every else report.differing
    if shown:
        table = Table(expand=False, title=None if every else "Replay differs from the log")
        for column in ("Line", "Request", "Object", "Recorded", "Replay"):
            table.add_column(column, overflow="fold")
        for replayed in shown:
            style = "bold red" if replayed.agreement is Agreement.DIFFER else ""
            replay = "; ".join(replayed.differences) or replayed.verdict()
            table.add_row(str(replayed.logged.location.line), _request(replayed),
                          replayed.logged.ref, replayed.logged.recorded.detail,
                          Text(replay, style=style))
        console.print(table)
    missing = report.not_rebuilt
    if missing:
        table = Table(expand=False, title="Not rebuilt (not judged)")
        for column in ("Line", "Request", "Object", "Why"):
            table.add_column(column, overflow="fold")
        for replayed in missing:
            table.add_row(str(replayed.logged.location.line), _request(replayed),
                          replayed.logged.ref, replayed.logged.rebuilt.problem)
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    skipped = sum(report.skipped.values())
    if skipped:
        reasons = ", ".join(f"{why} {n}" for why, n in sorted(report.skipped.items()))
        console.print(f"{skipped} event(s) not judged: {reasons}", highlight=False, markup=False)
    console.print(Text(report.summary(), style="bold red" if report.differing else "bold"))


def _request(replayed: Replayed) -> str:
    logged = replayed.logged
    text = f"{logged.verb} by {logged.user or '?'}"
    return text + " (dry run)" if logged.dry_run else text


def replay_dict(report: ReplayReport) -> dict[str, Any]:
    rate = report.agreement_rate()
    return {
        "apiVersion": API_VERSION,
        "kind": "ReplayReport",
        "tool": {"name": "edgewarden", "version": __version__},
        "auditLog": report.log,
        "summary": {
            "events": report.events,
            "requests": len(report.requests),
            "agree": report.count(Agreement.AGREE),
            "differ": report.count(Agreement.DIFFER),
            "notCompared": report.count(Agreement.NOT_COMPARED),
            "notRebuilt": len(report.not_rebuilt),
            "agreement": round(rate, 6) if rate is not None else None,
            "skipped": dict(sorted(report.skipped.items())),
        },
        "requests": [_replayed(r) for r in report.requests],
        "notes": list(report.notes),
    }


def _replayed(replayed: Replayed) -> dict[str, Any]:
    logged = replayed.logged
    recorded = logged.recorded
    return {
        "line": logged.location.line,
        "auditID": logged.audit_id,
        "verb": logged.verb,
        "operation": logged.operation,
        "resource": {"kind": logged.kind, "namespace": logged.namespace, "name": logged.name},
        "user": logged.user,
        "dryRun": logged.dry_run,
        "recorded": {"verdict": recorded.verdict.value, "code": recorded.code,
                     "detail": recorded.detail, "deniedBy": list(recorded.denied_by),
                     "audited": list(recorded.audited) if recorded.audited is not None else None,
                     "patch": list(recorded.patch) if recorded.patch is not None else None},
        "replay": None if replayed.result is None else {
            "allowed": replayed.result.allowed,
            "deniedBy": replayed.denied_by(),
            "findings": [{"policy": f.policy, "outcome": f.outcome.value, "message": f.message}
                         for f in replayed.result.findings],
            "patch": [dict(op) for op in replayed.patch],
        },
        "agreement": replayed.agreement.value,
        "differences": list(replayed.differences),
        "notRebuilt": logged.rebuilt.problem or None,
        "notes": list(logged.rebuilt.notes),
    }


def render_json(report: ReplayReport) -> str:
    return json.dumps(replay_dict(report), indent=2) + "\n"
