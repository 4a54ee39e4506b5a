"""Property: projected, flattened bindings never change what an expression decides.

For generated expressions over generated objects (nulls, lists, maps, odd types), the
engine (which evaluates the rewritten program against projected, flat bindings) gives
exactly the result CEL gives on the whole object, or an error where CEL errors.
"""

from __future__ import annotations

from typing import Any

import cel
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webhook.cluster.memory import MemoryCluster
from webhook.policy.cel.expression import CelCompileError, compile_expression
from webhook.policy.engine.evaluation import Engine
from webhook.policy.model.decision import FailurePolicy, Mode, ViolationSource
from webhook.policy.model.nulls import without_nulls
from webhook.policy.model.policy import Match, Policy, PolicySet, Validation
from webhook.policy.model.request import make_request

FIELDS = ["spec", "a", "b", "items", "type"]
WORDS = ["", "x", "LoadBalancer", "a"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(WORDS))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
        # Lists of objects, as spec.ports or spec.rules are.
        st.lists(st.dictionaries(st.sampled_from(FIELDS), inner, min_size=1), max_size=3),
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)


MISSING = object()
Scope = tuple[tuple[str, Any], ...]  # names in scope, and a value each may hold


def service(fields: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, **fields}


def literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def path(draw: st.DrawFn, scope: Scope, *, selection: bool = False) -> str:
    """A field path from a name in scope, mostly along keys its value really has.

    ``selection``: end in `.field`, as has() needs.
    """
    text, value = draw(st.sampled_from(scope))
    for _ in range(draw(st.integers(0, 4))):
        if isinstance(value, list) and value and draw(st.booleans()):
            text, value = text + "[0]", value[0]
            continue
        keys = sorted(value) if isinstance(value, dict) and value else FIELDS
        key = draw(st.sampled_from(keys if draw(st.integers(0, 4)) else FIELDS))
        text += f"['{key}']" if draw(st.integers(0, 3)) == 0 else f".{key}"
        value = value.get(key, MISSING) if isinstance(value, dict) else MISSING
    if selection:
        keys = sorted(value) if isinstance(value, dict) and value else FIELDS
        text += "." + draw(st.sampled_from(keys if draw(st.integers(0, 3)) else FIELDS))
    return text


def lists_in(text: str, value: Any, depth: int = 0) -> list[tuple[str, Any]]:
    found = [(text, value)] if isinstance(value, list) else []
    if isinstance(value, dict) and depth < 4:
        for key, child in sorted(value.items()):
            found.extend(lists_in(f"{text}.{key}", child, depth + 1))
    return found


def element_of(draw: st.DrawFn, scope: Scope) -> tuple[str, Any]:
    """A path to range over (mostly a list the value has), and a value its elements may hold."""
    candidates = [found for name, value in scope for found in lists_in(name, value)]
    if candidates and draw(st.integers(0, 4)):
        text, items = draw(st.sampled_from(candidates))
        return text, items[0] if items else MISSING
    name, value = draw(st.sampled_from(scope))
    text = name
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(value, dict) or not value:
            break
        key = draw(st.sampled_from(sorted(value)))
        text, value = f"{text}.{key}", value[key]
    if isinstance(value, list) and value:
        return text, value[0]
    if isinstance(value, dict) and value:
        return text, next(iter(value))
    return text, MISSING


def value_expr(draw: st.DrawFn, scope: Scope, depth: int, choice: int | None = None) -> str:
    if choice is None:
        choice = draw(st.integers(0, 11 if depth > 0 else 2))
    if choice <= 1:
        return path(draw, scope)
    if choice == 2:
        return literal(draw(scalars))
    smaller, variable = depth - 1, f"v{depth}"
    if choice == 3:
        return f"size({value_expr(draw, scope, smaller)})"
    if choice in (4, 5):
        ranged, sample = element_of(draw, scope)
        inner = (*scope, (variable, sample))
        if choice == 4:
            return f"{ranged}.filter({variable}, {bool_expr(draw, inner, smaller)})"
        return f"{ranged}.map({variable}, {value_expr(draw, inner, smaller)})"
    if choice in (6, 7):
        condition = bool_expr(draw, scope, smaller)
        first, second = value_expr(draw, scope, smaller), value_expr(draw, scope, smaller)
        return f"({condition} ? {first} : {second})"
    if choice == 8:
        return f"[{value_expr(draw, scope, smaller)}, {path(draw, scope)}]"
    if choice in (10, 11):
        # What reads a filter's result reads the elements it ranged over.
        ranged, sample = element_of(draw, scope)
        inner = (*scope, (variable, sample))
        predicate = bool_expr(draw, inner, smaller) if draw(st.booleans()) else "true"
        kept = f"{ranged}.filter({variable}, {predicate})"
        keys = sorted(sample) if isinstance(sample, dict) and sample else FIELDS
        key = draw(st.sampled_from(keys))
        if choice == 10:
            return f"{kept}[0].{key}"
        return f"{kept}.map(w, w.{key})"
    return f"{value_expr(draw, scope, smaller)}.filter(x, true)"


def bool_expr(draw: st.DrawFn, scope: Scope, depth: int) -> str:
    choice = draw(st.integers(0, 15 if depth > 0 else 7))
    if choice == 0:
        return f"has({path(draw, scope, selection=True)})"
    if choice == 1:
        return f"!has({path(draw, scope, selection=True)})"
    if choice == 2:
        return f"{path(draw, scope)} {draw(st.sampled_from(['==', '!=']))} null"
    if choice == 3:
        return f"'{draw(st.sampled_from(FIELDS))}' in {path(draw, scope)}"
    if choice == 4:
        return f"{path(draw, scope)} == {literal(draw(scalars))}"
    if choice == 5:
        return f"{path(draw, scope)}.startsWith('L')"
    if choice == 6:
        return f"size({path(draw, scope)}) > {draw(st.integers(0, 2))}"
    if choice == 7:
        return draw(st.sampled_from(["true", "false"]))
    smaller, variable = depth - 1, f"v{depth}"
    if choice == 8:
        return f"!({bool_expr(draw, scope, smaller)})"
    if choice == 9:
        return f"({bool_expr(draw, scope, smaller)} && {bool_expr(draw, scope, smaller)})"
    if choice == 10:
        return f"({bool_expr(draw, scope, smaller)} || {bool_expr(draw, scope, smaller)})"
    if choice == 11:
        return f"{value_expr(draw, scope, smaller)} == {value_expr(draw, scope, 0)}"
    if choice in (14, 15):
        return f"{value_expr(draw, scope, depth, choice=choice - 4)} == {literal(draw(scalars))}"
    if choice == 12:
        ranged, sample = value_expr(draw, scope, smaller), MISSING
    else:
        ranged, sample = element_of(draw, scope)
    macro = draw(st.sampled_from(["all", "exists", "exists_one"]))
    inner = (*scope, (variable, sample))
    return f"{ranged}.{macro}({variable}, {bool_expr(draw, inner, smaller)})"


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    obj, old = service(draw(objects)), service(draw(objects))
    return bool_expr(draw, (("object", obj), ("oldObject", old)), 3), obj, old


def whole_object_outcome(expression: str, obj: Any, old: Any) -> object:
    # The reference: CEL on the whole objects, where a null field is absent (SPEC).
    context = {"object": without_nulls(obj), "oldObject": without_nulls(old)}
    try:
        result = cel.compile(expression).execute(context)
    except Exception:
        return "error"
    return result if isinstance(result, bool) else "error"


def engine_outcome(expression: str, obj: dict[str, Any], old: dict[str, Any]) -> object:
    compiled = compile_expression(expression)
    policy = Policy(
        name="probe",
        description="",
        mode=Mode.ENFORCE,
        failure_policy=FailurePolicy.FAIL,
        match=Match(kinds=frozenset({"Service"}), operations=frozenset({"UPDATE"})),
        validations=(Validation(compiled),),
    )
    request = make_request("UPDATE", obj, old, namespace="team")
    decision = Engine(PolicySet((policy,))).evaluate(request, MemoryCluster())
    if not decision.violations:
        return True
    (violation,) = decision.violations
    return "error" if violation.source is ViolationSource.ERROR else False


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_projected_evaluation_decides_as_the_whole_object(
    case: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    expression, obj, old = case
    try:
        cel.compile(expression)
    except Exception:
        assume(False)  # not CEL the Rust binding accepts: nothing to compare
    try:
        got = engine_outcome(expression, obj, old)
    except CelCompileError as error:  # we must accept whatever the binding compiles
        raise AssertionError(f"{expression}: {error}") from None
    assert got == whole_object_outcome(expression, obj, old), expression
