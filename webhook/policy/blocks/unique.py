"""The ``unique`` block: keys (a host, a host and path) that one namespace holds alone.

What keys are and how they compare is keys.py; who may take a key, ownership.py. The block
asks the cluster backend for one key index (every stored object's keys), judges the keys an
admission adds, and claims them (KeyClaims) when it is allowed. What another namespace holds
is not this namespace's to waive: no PolicyException applies to its findings or its errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from webhook.policy.blocks import ownership
from webhook.policy.blocks.keys import UniqueIndex, UniqueKeysError
from webhook.policy.blocks.protocol import (
    OBJECT_ONLY,
    Block,
    Builder,
    Compiled,
    CompiledBlock,
    PolicyEvaluationError,
    Rewrite,
    Run,
    Slot,
)
from webhook.policy.model.block import Phase
from webhook.policy.model.decision import KeyClaim, ViolationSource
from webhook.policy.model.key_table import KeyMatch
from webhook.policy.model.policy import Policy, Unique


class UniqueBlock(Block[Unique]):
    name: ClassVar[str] = "unique"
    phase: ClassVar[Phase] = Phase.VALIDATE
    field: ClassVar[str | None] = "unique"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["keys"],
        "properties": {
            "keys": {"type": "string", "minLength": 1},
            "scope": {"enum": ["Cluster"]},
            "message": {"type": "string", "minLength": 1},
            "match": {"enum": ["Exact", "HostPath"]},
            "grantAnnotation": {"type": "string", "minLength": 1},
        },
    }

    def build(self, raw: Any, builder: Builder) -> Unique | None:
        # Over ``object`` alone: the cache computes every existing object's keys with it.
        keys = builder.cel(raw["keys"], ("spec", "unique", "keys"), OBJECT_ONLY)
        if keys is None:
            return None
        match = KeyMatch(raw.get("match", KeyMatch.EXACT.value))
        grants = raw.get("grantAnnotation")
        if grants is not None and match is not KeyMatch.HOST_PATH:
            builder.problem(("spec", "unique", "grantAnnotation"),
                            "grantAnnotation reserves hosts, so it needs match: HostPath")
        return Unique(keys=keys, scope=raw.get("scope", "Cluster"), message=raw.get("message"),
                      match=match, grant_annotation=grants)

    def slots(self, data: Unique) -> Iterator[Slot]:
        yield Slot(("spec", "unique", "keys"), data.keys, "list")

    def compile(self, data: Unique, policy: Policy, rewrite: Rewrite) -> CompiledBlock:
        # The index evaluates the expression as written, on any object (stored or admitted).
        index = UniqueIndex.for_policy(policy)

        def judge(run: Run) -> None:
            request = run.request
            if request.operation not in ("CREATE", "UPDATE") or run.object is None:
                return  # DELETE only frees keys; CONNECT has no object
            # The body's word on nulls holds for the object it carried, not a mutated one.
            facts = request.facts
            null_free = run.object is request.object and facts is not None and facts.null_free
            try:
                keys = index.evaluate(run.object, null_free=null_free)
            except UniqueKeysError as error:
                raise PolicyEvaluationError(run.explain(str(error))) from None
            if request.operation == "UPDATE" and request.old_object is not None:
                keys -= index.keys_of(request.old_object)  # keeping its own keys is fine
            verdict = ownership.judge(index, keys, request.namespace, run.cluster)
            if verdict.conflicts:
                what = data.message or "already held in another namespace"
                run.violation(f"{what} ({verdict.detail()})", ViolationSource.UNIQUE)
                return
            # Admitted over a squatter the grant overrides: say who still serves it.
            for warning in verdict.warnings:
                run.warning(warning)
            for key in sorted(keys):
                run.claim(KeyClaim(run.policy_name, index.key, key, request.key,
                                   request.namespace, request.name))

        return Compiled(
            judge,
            key_indexes=(index,),
            reads_cluster=True,
            unwaivable=frozenset({ViolationSource.UNIQUE, ViolationSource.ERROR}),
        )
