"""What a policy holds of a block that is not built in: the protocol its loaded data meets.

A policy's ``spec`` is made of blocks (``validations``, ``mutations``, ``limit``,
``unique``, and any a plug-in registers: webhook/policy/blocks). The four built in keep
their typed fields on :class:`~webhook.policy.model.policy.Policy`, which the reports and
the native export read; a plug-in block's data sits in ``Policy.blocks`` under its YAML key,
and the model needs to know only this much of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Protocol

from webhook.policy.cel.expression import CelExpression


class Phase(StrEnum):
    """When a block runs: mutations first (each policy seeing the object as the previous
    ones left it), then everything that judges that final object."""

    MUTATE = "mutate"
    VALIDATE = "validate"


class BlockSpec(Protocol):
    """A block's loaded data: immutable, with its compiled expressions."""

    @property
    def phase(self) -> Phase:
        """Which webhook (mutating or validating) the block needs."""
        ...

    def expressions(self) -> Iterator[CelExpression]:
        """Every compiled expression the block holds."""
        ...
