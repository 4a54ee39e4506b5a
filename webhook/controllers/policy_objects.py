"""Policy objects into the serving set, each with a status saying whether it serves.

A Policy object goes through the loader a policy file goes through, and the set it joins
through the same reload guards (the canary, the size checks). What comes of it is kept per
object, for its status:

* ``Ready=True, reason Loaded``: this generation serves (``loadedAt`` says since when);
* ``Ready=False, reason Invalid``: it does not load; the message names each field and, for a
  CEL problem, the expression. An older generation that loaded keeps serving, and the
  message says which;
* ``Ready=False, reason Refused``: it loads, but the set with it failed a guard (e.g. the
  canary: it errors on objects that exist); the serving set is untouched;
* ``Ready=False, reason Conflict``: a policy file defines the same name, and the file wins.

The serving set changes only through the reloader (one lock for files and objects).

Loading runs in a worker thread (a 700 KiB Policy takes seconds of CPU, and admissions
must not wait for it), and nothing a Policy holds can stop the controller: whatever goes
wrong loading one object (RecursionError and MemoryError included) is that object's
``Invalid`` status and one log line, and the objects after it are judged as usual.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from webhook.admission.policies_reload import PolicyReloader
from webhook.errors import EdgewardenError, PolicyLoadError, PolicyProblem
from webhook.policy.load.documents import load_policy_object, object_ref
from webhook.policy.load.loader import unloadable
from webhook.policy.model.policy import Policy

log = logging.getLogger("edgewarden.controllers")

LOADED, INVALID, REFUSED, CONFLICT = "Loaded", "Invalid", "Refused", "Conflict"


@dataclass(frozen=True)
class PolicyStatus:
    """What one Policy object's status says (written by the leader; see status.py)."""

    generation: int
    ready: bool
    reason: str
    message: str
    transition_at: float  # when ``ready`` last changed
    loaded_at: float | None = None  # when the generation that serves was loaded
    uid: str = ""  # the object's, for the event that tells a failure (see status.py)

    def body(self, rfc3339: Callable[[float], str]) -> dict[str, Any]:
        status: dict[str, Any] = {
            "observedGeneration": self.generation,
            "conditions": [{
                "type": "Ready",
                "status": "True" if self.ready else "False",
                "observedGeneration": self.generation,
                "lastTransitionTime": rfc3339(self.transition_at),
                "reason": self.reason,
                "message": self.message[:32768],
            }],
        }
        if self.loaded_at is not None:
            status["loadedAt"] = rfc3339(self.loaded_at)
        return status


def generation_of(obj: Mapping[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 1)


class PolicyObjects:
    def __init__(self, reloader: PolicyReloader, clock: Callable[[], float], *,
                 internal_lb_flavour: str | None = None) -> None:
        self.reloader = reloader
        self.clock = clock
        self.flavour = internal_lb_flavour
        self.serving: dict[str, tuple[int, Policy]] = {}
        self.statuses: dict[str, PolicyStatus] = {}
        self._judged: dict[str, int] = {}  # name -> the generation last judged
        self._uids: dict[str, str] = {}
        reloader.cluster_policies = self.policies

    def policies(self) -> tuple[Policy, ...]:
        return tuple(policy for _, (_, policy) in sorted(self.serving.items()))

    async def sync(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Judge what changed since the last sync and serve what passes."""
        present = {str((o.get("metadata") or {}).get("name")): o for o in objects}
        for name in [n for n in self.statuses if n not in present]:
            del self.statuses[name]
            self._judged.pop(name, None)
            self._uids.pop(name, None)
        gone = sorted(n for n in self.serving if n not in present)
        files = self.reloader.file_policy_names
        candidates: dict[str, tuple[int, Policy]] = {}
        for name, obj in sorted(present.items()):
            generation = generation_of(obj)
            self._uids[name] = str((obj.get("metadata") or {}).get("uid") or "")
            if name in files:
                if self._judged.get(name) != -generation:
                    self._judged[name] = -generation  # judged as a conflict
                    self._set(name, generation, False, CONFLICT,
                              f"a policy file defines {name!r} too, and the file's serves")
                continue
            if self._judged.get(name) == generation:
                continue
            self._judged[name] = generation
            try:
                policy = await asyncio.to_thread(load_policy_object, obj,
                                                 internal_lb_flavour=self.flavour)
            except PolicyLoadError as error:
                self._invalid(name, generation, obj, error)
                continue
            except Exception as error:  # load_policy_object catches all; a last guard
                self._invalid(name, generation, obj,
                              PolicyLoadError([unloadable(object_ref(obj), None, error)]))
                continue
            candidates[name] = (generation, policy)
        gone = sorted({*gone, *(n for n in self.serving if n in files)})
        if not candidates and not gone:
            return
        await self._install(candidates, gone)

    async def _install(self, candidates: dict[str, tuple[int, Policy]], gone: list[str]) -> None:
        base = {k: v for k, v in self.serving.items() if k not in gone}
        what = ", ".join([*(f"{n} (generation {g})" for n, (g, _) in candidates.items()),
                          *(f"{n} (deleted)" for n in gone)])
        refusal = await self._try({**base, **candidates}, f"Policy objects changed: {what}")
        if refusal is None:
            self._loaded(candidates)
            return
        if len(candidates) == 1 and not gone:
            self._refused(next(iter(candidates.items())), refusal)
            return
        # Together they were refused: one at a time, so each gets its own answer.
        if gone and await self._try(base, f"Policy objects deleted: {', '.join(gone)}"):
            log.error("deleting Policy objects %s was refused; they keep serving until a "
                      "set without them passes the guards", ", ".join(gone))
        for name, entry in sorted(candidates.items()):
            refusal = await self._try({**self.serving, name: entry},
                                      f"Policy object {name} (generation {entry[0]})")
            if refusal is None:
                self._loaded({name: entry})
            else:
                self._refused((name, entry), refusal)

    async def _try(self, wanted: dict[str, tuple[int, Policy]], why: str) -> str | None:
        """Serve ``wanted`` (None), or say why the guards refused it."""
        policies = [policy for _, (_, policy) in sorted(wanted.items())]
        try:
            await self.reloader.install_cluster(why, policies)
        except EdgewardenError as error:
            return f"refused ({getattr(error, 'reason', 'invalid')}): {error}"
        except Exception as error:  # a guard that broke refuses the set, not the controller
            log.error("Policy objects: building the set failed (%s: %s)", why,
                      type(error).__name__)
            return f"refused (error): building the set failed ({type(error).__name__})"
        self.serving = dict(wanted)
        return None

    def _loaded(self, candidates: dict[str, tuple[int, Policy]]) -> None:
        now = self.clock()
        for name, (generation, policy) in candidates.items():
            # spec.shadow: judged beside the enforced set, never answering (docs/shadow.md).
            what = "judged in shadow, never enforced" if policy.shadow else "serving"
            self._set(name, generation, True, LOADED, what, loaded_at=now)

    def _refused(self, candidate: tuple[str, tuple[int, Policy]], refusal: str) -> None:
        name, (generation, _) = candidate
        self._set(name, generation, False, REFUSED, refusal + self._still_serving(name))

    def _invalid(self, name: str, generation: int, obj: Mapping[str, Any],
                 error: PolicyLoadError) -> None:
        lines = [_line(p, obj) for p in error.problems]
        log.error("Policy %s generation %d does not load:\n%s", name, generation,
                  "\n".join(lines))
        self._set(name, generation, False, INVALID, "; ".join(lines) + self._still_serving(name))

    def _still_serving(self, name: str) -> str:
        serving = self.serving.get(name)
        return "" if serving is None else f" (generation {serving[0]} keeps serving)"

    def _set(self, name: str, generation: int, ready: bool, reason: str, message: str,
             loaded_at: float | None = None) -> None:
        previous = self.statuses.get(name)
        transition = (previous.transition_at if previous is not None and previous.ready == ready
                      else self.clock())
        if loaded_at is None and name in self.serving and previous is not None:
            loaded_at = previous.loaded_at
        status = PolicyStatus(generation, ready, reason, message, transition, loaded_at,
                              self._uids.get(name, ""))
        if previous is not None and replace(previous, transition_at=0) == replace(
                status, transition_at=0):
            return
        self.statuses[name] = status


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
QUOTED_EXPRESSION = 200  # characters of an expression a status or log line quotes


def _line(problem: PolicyProblem, obj: Mapping[str, Any]) -> str:
    return f"{problem.field}: {problem.message}{_expression(obj, problem.field)}"


def _expression(obj: Mapping[str, Any], field: str) -> str:
    """`` in "<expression>"`` when ``field`` holds a CEL expression of ``obj``."""
    if not field.endswith(("expression", "Expression", ".where")):
        return ""
    value: Any = obj
    for name, index in _STEP.findall(field):
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(
                value) else None
        else:
            value = value.get(name) if isinstance(value, Mapping) else None
    if not isinstance(value, str):
        return ""
    if len(value) <= QUOTED_EXPRESSION:
        return f' in "{value}"'
    return f' in "{value[:QUOTED_EXPRESSION]}…" ({len(value):,} characters)'
