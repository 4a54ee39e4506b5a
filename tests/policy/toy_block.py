"""A toy policy block in a package of its own, installed the way a third party ships one.

``install_toy_block(site)`` writes the package ``ew_toy_block`` and its distribution
metadata (an ``edgewarden.blocks`` entry point) into the folder ``site``; put ``site`` on
``sys.path`` (or ``PYTHONPATH`` for a subprocess) and edgewarden finds the block. Nothing in
webhook/ names it.

The block, ``requiredLabels``, is small but complete: a schema, a build that reports a
bad label key by YAML path, a CEL ``unless`` that the static checks type-check against the
kind, and an evaluation that reports a violation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

PACKAGE = "ew_toy_block"
BLOCK = "requiredLabels"
MESSAGE = "missing required label(s)"

SOURCE = '''
"""requiredLabels: label keys every matched object must carry (a toy edgewarden block)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from webhook.policy.blocks.protocol import (
    OBJECT_ONLY, Block, Builder, Compiled, CompiledBlock, Rewrite, Run, Slot,
)
from webhook.policy.cel.expression import CelExpression
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import ViolationSource
from webhook.policy.model.policy import Policy


@dataclass(frozen=True, slots=True)
class RequiredLabels:
    labels: tuple[str, ...]
    unless: CelExpression | None = None

    @property
    def phase(self) -> Phase:
        return Phase.VALIDATE

    def expressions(self) -> Iterator[CelExpression]:
        if self.unless is not None:
            yield self.unless


class RequiredLabelsBlock(Block[RequiredLabels]):
    name: ClassVar[str] = "requiredLabels"
    phase: ClassVar[Phase] = Phase.VALIDATE
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["labels"],
        "properties": {
            "labels": {"type": "array", "minItems": 1,
                       "items": {"type": "string", "minLength": 1}},
            "unless": {"type": "string", "minLength": 1},
        },
    }

    def build(self, raw: Any, builder: Builder) -> RequiredLabels | None:
        fine = True
        for i, label in enumerate(raw["labels"]):
            if " " in label:
                builder.problem(("spec", "requiredLabels", "labels", i),
                                "a label key has no spaces")
                fine = False
        unless = None
        if "unless" in raw:
            unless = builder.cel(raw["unless"], ("spec", "requiredLabels", "unless"),
                                 OBJECT_ONLY)
            fine = fine and unless is not None
        return RequiredLabels(tuple(raw["labels"]), unless) if fine else None

    def slots(self, data: RequiredLabels) -> Iterator[Slot]:
        if data.unless is not None:
            yield Slot(("spec", "requiredLabels", "unless"), data.unless, "bool")

    def compile(self, data: RequiredLabels, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        unless = None if data.unless is None else rewrite(data.unless)

        def judge(run: Run) -> None:
            obj = run.object
            if obj is None:
                return
            if unless is not None and unless.evaluate_bool(run.context(unless)):
                return
            labels = (obj.get("metadata") or {}).get("labels") or {}
            missing = [label for label in data.labels if label not in labels]
            if missing:
                run.violation("missing required label(s): " + ", ".join(missing),
                              ViolationSource.VALIDATION)

        return Compiled(judge)
'''


def install_toy_block(site: Path) -> Path:
    """Write the package and its entry point into ``site``; return ``site``."""
    package = site / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(SOURCE).lstrip())
    metadata = site / f"{PACKAGE}-0.1.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PACKAGE.replace('_', '-')}\nVersion: 0.1\n"
    )
    (metadata / "entry_points.txt").write_text(
        f"[edgewarden.blocks]\n{BLOCK} = {PACKAGE}:RequiredLabelsBlock\n"
    )
    return site


TOY_POLICY = f"""\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: services-carry-a-team
spec:
  match:
    kinds: [Service]
  {BLOCK}:
    labels: [team]
    unless: "object.spec.type == 'ExternalName'"
"""
