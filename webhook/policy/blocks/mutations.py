"""The ``mutations`` block: annotations added when absent, the internal load balancer of a
cloud flavour, and raw JSONPatch. A policy's mutations apply together or not at all."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import jsonpatch

from webhook.policy.blocks.patches import PatchError, add_absent_annotations, apply_raw_patch
from webhook.policy.blocks.protocol import (
    Block,
    Builder,
    Compiled,
    CompiledBlock,
    PolicyEvaluationError,
    Rewrite,
    Run,
    Slot,
    YamlPath,
)
from webhook.policy.model.block import Phase
from webhook.policy.model.policy import (
    INTERNAL_LB_FLAVOURS,
    InternalLoadBalancer,
    Mutation,
    Policy,
    RawPatch,
    SetAnnotations,
)

Mutations = tuple[Mutation, ...]

_JSON_PATCH_OP: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["op", "path"],
    "properties": {
        "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
        "path": {"type": "string", "pattern": "^(/.*)?$"},
        "from": {"type": "string", "pattern": "^(/.*)?$"},
        "value": {},
    },
}


class MutationsBlock(Block[Mutations]):
    name: ClassVar[str] = "mutations"
    phase: ClassVar[Phase] = Phase.MUTATE
    field: ClassVar[str | None] = "mutations"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                "setAnnotations": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "string"},
                },
                "internalLoadBalancer": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"flavour": {"enum": list(INTERNAL_LB_FLAVOURS)}},
                },
                "patch": {"type": "array", "minItems": 1, "items": _JSON_PATCH_OP},
            },
        },
    }

    def schema_message(self, keyword: str, where: YamlPath) -> str | None:
        if keyword in ("maxProperties", "minProperties") and len(where) == 1:
            return "a mutation has exactly one of setAnnotations, internalLoadBalancer or patch"
        return None

    def build(self, raw: Any, builder: Builder) -> Mutations | None:
        return tuple(
            m for i, item in enumerate(raw) if (m := self._one(i, item, builder)) is not None
        )

    @staticmethod
    def _one(index: int, raw: Mapping[str, Any], builder: Builder) -> Mutation | None:
        if "setAnnotations" in raw:
            return SetAnnotations(dict(raw["setAnnotations"]))
        if "internalLoadBalancer" in raw:
            return InternalLoadBalancer(
                builder.internal_lb_flavour or raw["internalLoadBalancer"].get("flavour", "aws")
            )
        try:
            jsonpatch.JsonPatch(raw["patch"])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as error:
            builder.problem(("spec", "mutations", index, "patch"), f"invalid JSONPatch: {error}")
            return None
        return RawPatch(tuple(raw["patch"]))

    def slots(self, data: Mutations) -> Iterator[Slot]:
        return iter(())  # no CEL

    def compile(self, data: Mutations, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        def judge(run: Run) -> None:
            if run.object is None:
                return
            obj = run.object
            ops: list[dict[str, Any]] = []
            try:
                for mutation in data:
                    if isinstance(mutation, SetAnnotations):
                        obj, added = add_absent_annotations(obj, mutation.annotations)
                    elif isinstance(mutation, InternalLoadBalancer):
                        key, value = mutation.annotation
                        obj, added = add_absent_annotations(obj, {key: value})
                    else:
                        obj = apply_raw_patch(obj, mutation.operations)
                        added = [dict(op) for op in mutation.operations]
                    ops.extend(added)
            except PatchError as error:
                # Nothing of this policy's mutations is kept: the object is as it was.
                raise PolicyEvaluationError(f"mutation failed: {error}") from None
            if ops:
                run.patch(ops, obj)

        return Compiled(judge)
