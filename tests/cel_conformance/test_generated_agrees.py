"""The generated functions (webhook/policy/cel/runtime/codegen.py) and the closures they
replace (compiler.py, kept for what cannot be generated) agree on every applicable
cel-spec conformance case: the same value, or the same error, case by case."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.cel_conformance.cases import binding_value, data_dir, load_file
from tests.cel_conformance.test_conformance import FILES
from webhook.policy.cel.expression import EXTENSION_FUNCTIONS, CelCompileError, compile_expression
from webhook.policy.cel.runtime import compile_program
from webhook.policy.cel.runtime.codegen import generate
from webhook.policy.cel.runtime.compiler import _literal_value
from webhook.policy.cel.syntax import parse


def _outcome(program: Any, bindings: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = program.execute(dict(bindings))
    except Exception as error:
        return ("error", f"{type(error).__name__}: {error}")
    if isinstance(value, float) and math.isnan(value):
        return ("value", "nan")
    return ("value", (type(value).__name__, repr(value)))


@pytest.mark.parametrize("name", FILES)
def test_generated_code_and_closures_agree(name: str) -> None:
    compared = 0
    for case in load_file(data_dir() / f"{name}.json"):
        if case.skip is not None:
            continue
        try:
            compiled = compile_expression(case.expr, allowed=frozenset(case.bindings))
        except CelCompileError:
            continue
        tree = parse(compiled.program_source)
        if generate(tree, compiled.program_source, _literal_value, EXTENSION_FUNCTIONS) is None:
            continue  # served by the closures themselves
        bindings = {key: binding_value(value) for key, value in case.bindings.items()}
        generated = compile_program(tree, case.expr, EXTENSION_FUNCTIONS)
        closures = compile_program(tree, case.expr, EXTENSION_FUNCTIONS, generated=False)
        assert _outcome(generated, bindings) == _outcome(closures, bindings), case.id
        compared += 1
    print(f"{name}: {compared} cases compared")


def test_an_expression_nested_past_pythons_blocks_is_served_by_closures() -> None:
    # Each `all` inside another nests a loop and a try block: Python allows 20 blocks.
    source = "v0"
    for depth in range(1, 13):
        source = f"x.all(v{depth}, {source})"
    source = source.replace("x.all(v1, v0)", "x.all(v0, v0)")
    tree = parse(source)
    assert generate(tree, source, _literal_value, EXTENSION_FUNCTIONS) is None
    program = compile_program(tree, source, EXTENSION_FUNCTIONS)
    assert program.execute({"x": [True]}) is True
    assert program.execute({"x": [False]}) is False


def test_what_a_policy_writes_is_never_python_text() -> None:
    source = """'"); raise SystemExit("x' + "\\n\\nimport os" == object.spec['a"]\\n']"""
    tree = parse(source)
    function = generate(tree, source, _literal_value, EXTENSION_FUNCTIONS)
    assert function is not None
    obj = {"spec": {'a"]\n': '"); raise SystemExit("x\n\nimport os'}}
    assert function({"object": obj}) is True


@pytest.mark.parametrize("source", [
    "'abc'.substring(5)",  # a library error: Kubernetes' words
    "'abc'.indexOf(x)",  # a wrong argument type
    "x.join(', ')",
    "[1, [2]].flatten()",
    "sets.of(x).size() > 0",
    "'a.b'.split('.').join('-') == 'a-b'",  # and one that does not fail
])
def test_extension_functions_fail_alike_called_inline(source: str) -> None:
    """Generated code calls an extension function itself, not through its wrapper
    (expression._value_free), and must fail with the wrapper's very error."""
    tree = parse(source)
    assert generate(tree, source, _literal_value, EXTENSION_FUNCTIONS) is not None
    generated = compile_program(tree, source, EXTENSION_FUNCTIONS)
    closures = compile_program(tree, source, EXTENSION_FUNCTIONS, generated=False)
    for bindings in ({"x": 7}, {"x": ["a", 1]}, {"x": "a"}):
        assert _outcome(generated, bindings) == _outcome(closures, bindings)
