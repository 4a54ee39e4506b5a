"""The API server's CEL bounds, checked before any parser: too long or too deep is a clear
error at once; what cel-go accepts (a 400-term allow-list, a run of `!`) loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.policy.conftest import engine_for, make_request
from tests.policy.hostile import ALLOW_LIST_400, HOSTILE, Hostile
from tests.support import service
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.cel.bounds import MAX_CODE_POINTS, MAX_NESTING, nesting_bound
from webhook.policy.cel.expression import CelCompileError, compile_expression
from webhook.policy.cel.syntax import depth, parse
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).resolve().parents[2]
EDGEWARDEN = [sys.executable, "-c", "from webhook.cli import main; main()"]


def test_an_expression_over_100000_characters_is_refused_before_parsing() -> None:
    text = "true || " * (MAX_CODE_POINTS // 8) + "true"
    with pytest.raises(CelCompileError, match="too long: 100,004 characters, over the limit "
                                              "of 100,000"):
        compile_expression(text)


@pytest.mark.parametrize("text", [
    "(" * 2000 + "true" + ")" * 2000,
    "[" * 300 + "]" * 300,
    " + ".join(["1"] * 300) + " > 0",  # the Rust compiler overflows its stack on 33,000
    "object" + ".metadata" * 300 + " == 1",
    "!-" * 200 + "1",
])
def test_nesting_past_250_levels_is_refused_whatever_the_construct(text: str) -> None:
    with pytest.raises(CelCompileError, match=f"nested too deep: more than {MAX_NESTING}"):
        compile_expression(text)


def test_the_400_term_allow_list_nests_as_a_balanced_tree() -> None:
    tree = parse(ALLOW_LIST_400)
    assert depth(tree) == 9 + 4, "9 levels of || (as cel-go balances it), then a.b.c == 'x'"
    assert nesting_bound(ALLOW_LIST_400) <= MAX_NESTING


def test_a_run_of_negations_counts_once_as_in_cel_go() -> None:
    assert depth(parse("!" * 5000 + "true")) == 1, "an even run is its operand"
    assert depth(parse("!" * 5001 + "true")) == 2
    expression = compile_expression("!" * 5001 + "(object.spec.type == 'NodePort')",
                                    allowed=frozenset({"object"}))
    assert expression.evaluate({"object": {"spec": {"type": "ClusterIP"}}}) is True


def test_the_allow_list_policy_judges_as_written() -> None:
    allow = next(h for h in HOSTILE if h.name == "allow-list-400")
    engine = engine_for(allow.yaml())
    cluster = MemoryCluster([])
    listed = engine.evaluate(make_request("CREATE", service(name="svc-0399", namespace="dev")),
                             cluster)
    other = engine.evaluate(make_request("CREATE", service(name="web", namespace="dev")),
                            cluster)
    assert listed.allowed and not other.allowed


# Expressions the nesting bound must never under-estimate: it guards the recursive walks.
_atoms = st.sampled_from(["x", "1", "'s'", "true", "object.spec", "[1, 2]", "{'a': 1}"])


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from([" + ", " - ", " * ", " == ", " < ", " in ", " && ", " || "])
    return st.one_of(
        st.tuples(inner, binary, inner).map("".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"!{e}"),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"{e}.field"),
        inner.map(lambda e: f"{e}[0]"),
        inner.map(lambda e: f"size({e})"),
        inner.map(lambda e: f"[{e}, {e}]"),
        # CEL's middle branch is a conditionalOr: a ternary there needs its parentheses.
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? ({t[1]}) : {t[2]}"),
        inner.map(lambda e: f"x.all(y, {e})"),
    )


@settings(max_examples=300, deadline=None)
@given(st.recursive(_atoms, _combine, max_leaves=40))
def test_the_bound_is_never_below_the_depth_of_the_tree(text: str) -> None:
    assert nesting_bound(text, stop_above=10_000) >= depth(parse(text))


def test_a_policy_at_the_nesting_limit_loads_with_400_frames_on_the_stack() -> None:
    """Our deepest walk (the type checker) takes two frames per level, some 500 at the
    limit: loading from a stack 400 frames deep stays under Python's 1,000."""
    expression = " + ".join(["1"] * 248) + " > 0"
    assert MAX_NESTING - 2 <= nesting_bound(expression) <= MAX_NESTING
    policy = Hostile("at-the-limit", expression, None).yaml()

    def nested(levels: int) -> str:
        if levels > 0:
            return nested(levels - 1)
        return engine_for(policy).policies.policies[0].name

    below = 0
    frame = sys._getframe()
    while frame.f_back is not None:
        below, frame = below + 1, frame.f_back
    assert nested(400 - below) == "at-the-limit"


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.name)
def test_validate_answers_each_hostile_policy_in_one_line(hostile: Hostile,
                                                          tmp_path: Path) -> None:
    file = tmp_path / f"{hostile.name}.yaml"
    file.write_text(hostile.yaml(), encoding="utf-8")
    result = subprocess.run([*EDGEWARDEN, "validate", str(file)], capture_output=True,
                            text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "RecursionError" not in output
    if hostile.refusal is None:
        assert result.returncode == 0, output
        assert f"✓ {hostile.name}" in output
        return
    assert result.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("✗")]
    assert len(errors) == 1, output
    assert errors[0].startswith(
        f"✗ {file}:{hostile.expression_line}: spec.validations[0].expression: CEL: ")
    assert hostile.refusal in errors[0]
    assert len(errors[0]) < 300, "the message quotes no 1 MiB expression"


@pytest.mark.parametrize("hostile", [h for h in HOSTILE if h.refusal], ids=lambda h: h.name)
def test_serve_refuses_a_hostile_policy_at_start_in_one_line(hostile: Hostile,
                                                              tmp_path: Path) -> None:
    file = tmp_path / f"{hostile.name}.yaml"
    file.write_text(hostile.yaml(), encoding="utf-8")
    result = subprocess.run(
        [*EDGEWARDEN, "serve", "--dev", "--policies", str(file), "--port", "0"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "RecursionError" not in output
    assert result.returncode == 2, output
    where = f"{file}:{hostile.expression_line}: spec.validations[0].expression"
    assert f"{where}: CEL: {hostile.refusal}" in output


def test_a_patch_value_nested_past_64_levels_is_one_error(tmp_path: Path) -> None:
    value: object = "x"
    for _ in range(200):
        value = [value]
    document = Hostile("deep-patch", "true", None).document()
    document["spec"]["mutations"] = [{"patch": [
        {"op": "add", "path": "/metadata/labels/x", "value": value}]}]
    file = tmp_path / "deep-patch.yaml"
    file.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(PolicyLoadError) as raised:
        load_policies(file)
    assert [p.message for p in raised.value.problems] == [
        "nested more than 64 levels deep (the limit for a policy document)"]
    assert raised.value.problems[0].field.startswith("spec.mutations[0].patch")


def test_yaml_nested_too_deep_to_read_is_one_error(tmp_path: Path) -> None:
    file = tmp_path / "deep.yaml"
    file.write_text("a: " + "[" * 900 + "]" * 900 + "\n", encoding="utf-8")
    with pytest.raises(PolicyLoadError) as raised:
        load_policies(file)
    assert [str(p) for p in raised.value.problems] == [
        f"{file}: <document>: YAML nested too deep to read"]
