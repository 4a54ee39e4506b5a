"""The syntax tree every analysis and rewrite works on: spans, scopes, CEL's full grammar."""

from __future__ import annotations

import cel
import pytest

from webhook.policy.cel.expression import CelCompileError, compile_expression
from webhook.policy.cel.references import references
from webhook.policy.cel.syntax import (
    Call,
    Comprehension,
    Has,
    ListExpr,
    Literal,
    Select,
    parse,
    replace_spans,
    walk,
)
from webhook.policy.engine.bindings import BindingPlan


def test_every_node_knows_the_source_it_came_from() -> None:
    source = "!has(object.spec.type) || object.spec.type != 'NodePort' && true"
    for node in walk(parse(source)):
        start, end = node.span
        assert 0 <= start < end <= len(source), node
    (has,) = [n for n in walk(parse(source)) if isinstance(n, Has)]
    assert source[has.span[0] : has.span[1]] == "has(object.spec.type)"
    (true,) = [n for n in walk(parse(source)) if isinstance(n, Literal) and n.kind == "bool"]
    assert source[true.span[0] : true.span[1]] == "true"


def test_macros_are_comprehensions_with_their_variable() -> None:
    tree = parse("object.spec.rules.map(r, has(r.host), r.host)")
    assert isinstance(tree, Comprehension)
    assert (tree.macro, tree.variable, len(tree.body)) == ("map", "r", 2)


def test_namespaced_functions_are_one_call() -> None:
    tree = parse("math.greatest(1, 2)")
    assert isinstance(tree, Call) and tree.function == "math.greatest" and tree.target is None


def test_comprehension_variables_shadow_only_inside_their_comprehension() -> None:
    refs = references(parse("[1].all(object, object > 0) && object.spec != null"))
    assert refs.free == {"object"}
    refs = references(parse("[1].all(object, object > 0)"))
    assert refs.free == frozenset()


def test_variables_are_found_by_scope_not_by_text() -> None:
    refs = references(parse("variables.a + 'variables.b' + [1].map(variables, 1).size()"))
    assert refs.policy_variables == ("a",)


@pytest.mark.parametrize(
    "source",
    ["['a', 'b',].exists(k, k == 'a')", "{'a': 1,}.a == 1", "0.size() == 0 || 1.5 > .5"],
)
def test_what_cel_accepts_parses(source: str) -> None:
    cel.compile(source)  # the binding accepts it...
    parse(source)  # ...and so do we (cel-python's grammar alone would not)
    assert compile_expression(source).program.execute({}) is True


def test_a_trailing_comma_in_a_list_keeps_its_items() -> None:
    tree = parse("[1, 2,]")
    assert isinstance(tree, ListExpr) and len(tree.items) == 2


def test_span_rewrites_leave_strings_alone() -> None:
    source = "object.spec.type == 'object.spec.type'"
    tree = parse(source)
    assert isinstance(tree.args[0], Select)  # type: ignore[union-attr]
    rewritten = replace_spans(source, [(tree.args[0].span, "x")])  # type: ignore[union-attr]
    assert rewritten == "x == 'object.spec.type'"


def test_what_does_not_parse_gets_the_bindings_message() -> None:
    with pytest.raises(CelCompileError, match="parse"):
        compile_expression("object.spec.type != ")


def test_a_comprehension_variable_named_like_a_root_is_not_rewritten() -> None:
    source = "object.spec.rules.all(object, object.host != '')"
    rewritten = BindingPlan().expression(compile_expression(source))
    assert rewritten.program_source.endswith(".all(object, object.host != '')")
    rules = {"spec": {"rules": [{"host": "a", "http": {}}, {"host": ""}]}}
    context = {name: rules["spec"]["rules"] for name in rewritten.variables}
    assert rewritten.program.execute(context) is cel.compile(source).execute({"object": rules})
