"""The CEL runtime (webhook/policy/cel/runtime): CEL's semantics where Python's differ,
through the public compile/evaluate path the engine uses."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.policy.cel.expression import CelEvaluationError, compile_expression
from webhook.policy.cel.runtime import MissingKey, SharedActivation, UInt, compile_program
from webhook.policy.cel.syntax import parse

OBJECT = frozenset({"object"})


def run(source: str, obj: Any = None) -> Any:
    return compile_expression(source, allowed=OBJECT).evaluate({"object": obj})


def fails(source: str, obj: Any = None) -> str:
    with pytest.raises(CelEvaluationError) as caught:
        run(source, obj)
    return str(caught.value)


@pytest.mark.parametrize(("source", "expected"), [
    ("1 == 1.0", True),
    ("1u == 1", True),
    ("1 == 'a'", False),
    ("[1, 'a'] == [1.0, 'a']", True),
    ("{'a': 1} == {'a': 1u}", True),
    ("null == null", True),
    ("[] == {}", False),
    ("1 in [1.0, 2.0]", True),
    ("2.0 in {2: 'x'}", True),
    ("true in {1: 'x'}", False),
])
def test_equality_is_heterogeneous_across_numbers_only(source: str, expected: bool) -> None:
    assert run(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ("-7 / 2", -3),
    ("-7 % 2", -1),
    ("7 % -2", 1),
    ("7u / 2u", 3),
    ("-5.0 / 2.0", -2.5),
    ("1.0 / 0.0 > 1e308", True),
])
def test_division_truncates_toward_zero(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize("source", [
    "9223372036854775807 + 1",
    "-9223372036854775808 - 1",
    "-(-9223372036854775807 - 1)",
    "0u - 1u",
    "18446744073709551615u + 1u",
    "4611686018427387904 * 2",
    "int(9.3e18)",
    "uint(-1)",
])
def test_overflow_is_an_error(source: str) -> None:
    assert fails(source) == "integer overflow"


@pytest.mark.parametrize(("source", "message"), [
    ("1 / 0", "division or modulo by zero"),
    ("1 % 0", "division or modulo by zero"),
    ("1 + 1u", "no such overload: int + uint"),
    ("1 + 1.0", "no such overload: int + double"),
    ("'a' < 1", "no such overload: string < int"),
    ("[1][1]", "index out of range"),
])
def test_operations_without_an_overload_fail(source: str, message: str) -> None:
    assert fails(source) == message


def test_uint_is_a_type_of_its_own() -> None:
    assert run("type(1u) == uint && type(1) == int && type(1u) != type(1)") is True
    value = run("2u * 3u")
    assert type(value) is UInt and value == 6
    assert run("uint('18446744073709551615')") == 2**64 - 1


@pytest.mark.parametrize(("source", "expected"), [
    ("1 / 0 == 1 || true", True),
    ("true || 1 / 0 == 1", True),
    ("1 / 0 == 1 && false", False),
    ("false && 1 / 0 == 1", False),
    ("[0, 1].exists(x, 1 / x == 1)", True),
    ("[0, 1].all(x, 1 / x == 5)", False),
    ("!([0, 1].all(x, 1 / x == 1))", None),
])
def test_logic_absorbs_errors_as_cel_does(source: str, expected: bool | None) -> None:
    if expected is None:
        assert fails(source) == "division or modulo by zero"
    else:
        assert run(source) is expected


def test_exists_one_does_not_absorb_errors() -> None:
    assert run("[1, 2, 3].exists_one(x, x > 2)") is True
    assert fails("[0, 1].exists_one(x, 1 / x == 1)") == "division or modulo by zero"


def test_comprehensions_iterate_a_map_in_the_objects_key_order() -> None:
    keys = [f"k{i}" for i in range(50, 0, -1)]
    obj = {"labels": dict.fromkeys(keys, "v")}
    assert run("object.labels.map(k, k)", obj) == keys
    assert run("object.labels.filter(k, k.endsWith('0'))", obj) == \
        [k for k in keys if k.endswith("0")]


def test_map_and_filter_build_lists_as_long_as_their_input() -> None:
    rules = [{"host": f"h{i}", "port": i} for i in range(20_000)]
    obj = {"rules": rules}
    assert run("object.rules.map(r, r.host).size()", obj) == 20_000
    assert run("object.rules.filter(r, r.port % 2 == 0).size()", obj) == 10_000
    assert run("(object.rules + object.rules).size()", obj) == 40_000


def test_has_tests_presence_and_a_missing_key_is_named_when_written() -> None:
    obj = {"spec": {"type": "ClusterIP"}}
    assert run("has(object.spec.type) && !has(object.spec.ports)", obj) is True
    assert fails("object.spec.ports", obj) == "no such key: 'ports'"
    assert fails("object.spec[object.spec.type]", obj) == \
        "no such key (the key is computed from the input)"


@pytest.mark.parametrize(("source", "expected"), [
    ("int('42') + int(2.9) + int(-2.9)", 42),
    ("uint(3.7)", 3),
    ("double('1.5') + double(1) + double(2u)", 4.5),
    ("string(1.0) + string(1e6) + string(true) + string(3u)", "11e+06true3"),
    ("string(b'abc')", "abc"),
    ("bytes('ÿ') == b'ÿ'", True),
    ("size(b'\\xff\\377')", 2),
    ("size(b'ÿ')", 2),
    ("b'\\x61' == b'a'", True),
    ("size('ÿ')", 1),
    ("dyn(1) == 1", True),
    ("type('a') == string && type([]) == list && type({}) == map", True),
    ("type(null) == null_type && type(type(1)) == type", True),
    ("string(duration('1h30m')) + string(timestamp('2024-05-01T10:00:00+02:00'))",
     "5400s2024-05-01T08:00:00Z"),
    ("timestamp('2024-05-01T10:00:00Z') - duration('1h') < timestamp('2024-05-01T10:00:00Z')",
     True),
    ("timestamp('2024-05-01T10:00:00Z').getDayOfWeek()", 3),
])
def test_conversions_and_literals(source: str, expected: Any) -> None:
    assert run(source) == expected


def test_conversions_refuse_what_cel_refuses() -> None:
    assert fails("int('4x')").startswith("int() failed")
    assert fails("duration('soon')").startswith("duration() failed")
    assert fails("timestamp('yesterday')").startswith("timestamp() failed")
    assert fails("'a'.matches('(')").startswith("matches() failed")
    assert fails("int(true)") == "no such overload: int(bool)"


def test_string_functions_and_optionals() -> None:
    assert run("'Hello'.startsWith('He') && 'Hello'.endsWith('lo') && 'Hello'.contains('ell')")
    assert run("'abc'.matches('^a.c$') && !'abc'.matches('^b')") is True
    assert run("{'a': 1}.?b.orValue(7) + {'a': 1}.?a.value()") == 8
    assert run("[1, 2].first().hasValue() && ![].last().hasValue()") is True
    assert run("optional.ofNonZeroValue('').orValue('x')") == "x"


def test_an_unbound_variable_is_named() -> None:
    expression = compile_expression("object.x", allowed=OBJECT)
    with pytest.raises(CelEvaluationError, match="no such variable or function: 'object'"):
        expression.evaluate({})


def test_a_shared_activation_runs_each_program_once() -> None:
    calls: list[str] = []

    def counted(value: Any) -> Any:
        calls.append("called")
        return value

    tree = parse("counted(object.x) == 1")
    program = compile_program(tree, "counted(object.x) == 1", {"counted": counted})
    shared = SharedActivation()
    shared["object"] = {"x": 1}
    assert program.execute(shared) is True
    assert program.execute(shared) is True
    assert calls == ["called"], "the outcome is kept in the activation"
    assert program.execute({"object": {"x": 2}}) is False  # a plain dict keeps nothing
    assert program.execute({"object": {"x": 2}}) is False
    assert len(calls) == 3
    failing = SharedActivation()
    failing["object"] = {}
    for _ in range(2):  # an error is kept too, and raised again
        with pytest.raises(MissingKey):
            program.execute(failing)
    assert len(calls) == 3


def test_flatten_of_one_level_opens_each_list_once() -> None:
    """`.flatten()` (depth 1, the shipped policies' use) has its own loop: it gives what
    the general walk gives, nested lists kept one level down."""
    from webhook.policy.cel.runtime.extensions import flatten

    cases: list[list[Any]] = [[], [[1], [2, 3]], [1, [2, [3, [4]]], "a", []], [[[]], (1, 2)]]
    for items in cases:
        expected: list[Any] = []
        for item in items:
            expected.extend(item if isinstance(item, list | tuple) else [item])
        assert flatten(items) == expected
    assert flatten([1, [2, [3, [4]]]], 2) == [1, 2, 3, [4]]  # the general walk, deeper
