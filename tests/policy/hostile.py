"""Policies built to break a loader: deep nesting, long negation runs, huge allow-lists.

Each is a real Policy over Services; ``refusal`` is the words of the error it must get, or
None when the Kubernetes API server's CEL parser (cel-go) accepts it and so must we.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

MIB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str
    expression: str
    refusal: str | None  # what the error says; None: it loads

    def document(self) -> dict[str, Any]:
        return {
            "apiVersion": "edgewarden.dev/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": self.name},
            "spec": {
                "match": {"kinds": ["Service"]},
                "validations": [{"expression": self.expression,
                                 "message": f"{self.name} denies this Service"}],
            },
        }

    def yaml(self) -> str:
        return yaml.safe_dump(self.document(), width=1 << 30, sort_keys=False)

    @property
    def expression_line(self) -> int:
        """The line of ``yaml()`` the expression is on (what an error names)."""
        lines = self.yaml().splitlines()
        return next(i for i, line in enumerate(lines, 1) if "expression:" in line)


def allow_list(size_at_least: int) -> str:
    """``object.metadata.name == 'svc-0000' || ...`` of at least ``size_at_least`` chars."""
    terms: list[str] = []
    length = 0
    while length < size_at_least:
        term = f"object.metadata.name == 'svc-{len(terms):04d}'"
        terms.append(term)
        length += len(term) + 4
    return " || ".join(terms)


ALLOW_LIST_400 = " || ".join(f"object.metadata.name == 'svc-{i:04d}'" for i in range(400))

HOSTILE = (
    Hostile("nested-parentheses",
            "(" * 2000 + "object.spec.type != 'NodePort'" + ")" * 2000,
            "expression is nested too deep: more than 250 levels"),
    # cel-go reads a run of `!` as one (or no) negation: the API server accepts this.
    Hostile("negations", "!" * 5000 + "(object.spec.type != 'NodePort')", None),
    # cel-go balances `||` chains: 400 terms nest 9 deep, and the API server accepts it.
    Hostile("allow-list-400", ALLOW_LIST_400, None),
    Hostile("allow-list-1mib", allow_list(MIB),
            "expression is too long: 1,048,"),
)
