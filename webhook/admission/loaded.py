"""The policy set in force, compiled for each endpoint: what a reload builds and the policy
slot (webhook/admission/state.py) swaps whole."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from webhook.admission.shadow import ShadowSet, split
from webhook.policy.engine.budget import DEFAULT_BUDGET
from webhook.policy.engine.compiled import CompiledPolicies
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import FailurePolicy, Mode
from webhook.policy.model.policy import Policy, PolicySet


@dataclass(frozen=True, slots=True)
class EvaluationBudget:
    """What one admission may cost: the CEL budget (webhook/policy/engine/budget.py) and a
    wall-clock deadline past which the remaining policies fail by their failurePolicy."""

    budget_ms: float = DEFAULT_BUDGET / 1000
    deadline_ms: float | None = None

    def engine_arguments(self) -> dict[str, Any]:
        return {
            "budget": self.budget_ms * 1000,
            "deadline": self.deadline_ms / 1000 if self.deadline_ms is not None else None,
            "clock": time.monotonic if self.deadline_ms is not None else None,
        }


@dataclass(slots=True)
class LoadedPolicies:
    """One policy set and what the edges need to know about it, swapped as a unit.

    Each endpoint gets an engine over its half of the set: /mutate runs only mutations and
    /validate only validations and limits. The API server sends /validate the object as
    every mutating webhook left it, so re-running our mutations there would only repeat
    work (copying the object, which with managedFields dominates a decision); and /mutate
    never judges (SPEC). Offline callers (test, check, audit) keep the whole-set engine.
    """

    engine: Engine  # /validate
    mutate_engine: Engine  # /mutate: the patch (everything is withheld in dry-run)
    # Audit-mode mutating policies, run apart so their would-be patch is reported without
    # entering the real one (whose later operations may build on earlier ones).
    audit_mutate_engine: Engine | None
    declared_modes: dict[str, Mode]
    names: frozenset[str]
    failing_kinds: frozenset[str]  # kinds with a failurePolicy: Fail policy
    unique_kinds: frozenset[str] = frozenset()  # kinds some ``unique`` policy judges
    # Candidates judged beside this set, never answering (webhook/admission/shadow.py).
    shadow: ShadowSet | None = None

    @classmethod
    def build(
        cls, policies: PolicySet, *, dry_run: bool, budget: EvaluationBudget | None = None,
        shadow: PolicySet | None = None,
    ) -> LoadedPolicies:
        """``policies`` may hold ``spec.shadow`` policies: they join ``shadow`` (the
        --shadow folder's) as candidates, and the rest is enforced."""
        policies, candidates = split(policies, shadow)
        compiled = CompiledPolicies.compile(policies)  # once, shared by the three engines
        audit_only = [p for p in policies.policies if p.mutates and p.mode is Mode.AUDIT]
        bounds = (budget or EvaluationBudget()).engine_arguments()
        return cls(
            engine=Engine(compiled, force_audit=dry_run, mutations=None, **bounds),
            mutate_engine=Engine(
                compiled,
                force_audit=dry_run,
                mutations=lambda p: dry_run or p.mode is not Mode.AUDIT,
                validations=False,
                **bounds,
            ),
            audit_mutate_engine=(
                Engine(compiled, mutations=_is_audit, validations=False, **bounds)
                if audit_only and not dry_run
                else None
            ),
            declared_modes={p.name: p.mode for p in policies.policies},
            names=frozenset(p.name for p in policies.policies),
            failing_kinds=frozenset(
                kind
                for policy in policies.policies
                if policy.failure_policy is FailurePolicy.FAIL
                for kind in policy.match.kinds
            ),
            unique_kinds=frozenset(
                kind for policy in policies.policies if policy.unique is not None
                for kind in policy.match.kinds
            ),
            shadow=ShadowSet.build(candidates, bounds) if candidates.policies else None,
        )

    def engines(self) -> list[Engine]:
        """The enforced set's /validate engine and the candidates' (what the cluster view
        must index and watch for)."""
        shadow = [self.shadow.validate_engine] if self.shadow is not None else []
        return [self.engine, *shadow]


def _is_audit(policy: Policy) -> bool:
    return policy.mode is Mode.AUDIT
