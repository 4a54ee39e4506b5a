"""The coverage matrix as text: one row per policy, wrapped to fit 80 columns."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from webhook.native.coverage import Coverage, Where, assess
from webhook.policy.model.policy import Policy

WIDTH = 80


def coverage_table(coverage: Sequence[Coverage]) -> str:
    name_width = max([len("policy"), *(len(c.policy) for c in coverage)])
    header = f"{'policy':<{name_width}}  {'runs':<8} why it needs the webhook"
    lines = [header, "-" * min(WIDTH, max(len(header), 40))]
    indent = " " * (name_width + 11)
    for row in coverage:
        parts = [part for part in (
            "ValidatingAdmissionPolicy" if row.validating else "",
            "MutatingAdmissionPolicy" if row.mutating else "") if part]
        reasons = "; ".join(row.reasons) or ("(" + " + ".join(parts) + ")")
        wrapped = textwrap.wrap(reasons, width=max(20, WIDTH - len(indent))) or [""]
        lines.append(f"{row.policy:<{name_width}}  {row.where!s:<8} {wrapped[0]}")
        lines += [indent + more for more in wrapped[1:]]
    native = sum(1 for c in coverage if c.where == "native")
    lines.append("")
    lines.append(f"{native} native, {sum(1 for c in coverage if c.where == 'partly')} partly, "
                 f"{sum(1 for c in coverage if c.where == 'webhook')} on the webhook only")
    return "\n".join(lines) + "\n"


def placement_note(policies: Sequence[Policy]) -> str:
    """One line for ``check``, ``test`` and ``audit``: which policies the API server can run
    natively once exported, and why the others need the webhook."""
    rows = [assess(policy) for policy in policies]
    native = [row.policy for row in rows if row.where is Where.NATIVE]
    others = [f"{row.policy} ({row.where}: {'; '.join(row.reasons)})"
              for row in rows if row.where is not Where.NATIVE]
    return ("where each policy runs (`edgewarden export`): natively in the API server: "
            + (", ".join(native) or "none")
            + "; needs the webhook: " + (", ".join(others) or "none"))
