"""Label selectors behave exactly as Kubernetes defines them."""

from __future__ import annotations

import pytest

from webhook.policy.model.selectors import LabelSelector, Requirement


def selector(**kwargs: object) -> LabelSelector:
    return LabelSelector(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", {"production", "prod"}, {"environment": "prod"}, True),
        ("In", {"production", "prod"}, {"environment": "staging"}, False),
        ("In", {"production"}, {}, False),
        ("NotIn", {"allowed"}, {"x": "allowed"}, True),
        ("NotIn", {"allowed"}, {}, True),  # a missing label satisfies NotIn
        ("NotIn", {"allowed"}, {"public": "allowed"}, False),
        ("Exists", set(), {"public": ""}, True),
        ("Exists", set(), {}, False),
        ("DoesNotExist", set(), {}, True),
        ("DoesNotExist", set(), {"public": "x"}, False),
    ],
)
def test_match_expression_operators(
    operator: str, values: set[str], labels: dict[str, str], expected: bool
) -> None:
    key = "environment" if operator == "In" else "public"
    requirement = Requirement(key, operator, frozenset(values))
    assert selector(match_expressions=(requirement,)).matches(labels) is expected


def test_empty_selector_matches_everything_even_no_labels() -> None:
    assert LabelSelector().matches(None)
    assert LabelSelector().matches({"a": "b"})


def test_match_labels_and_expressions_are_anded() -> None:
    both = selector(
        match_labels=(("team", "payments"),),
        match_expressions=(Requirement("environment", "In", frozenset({"prod"})),),
    )
    assert both.matches({"team": "payments", "environment": "prod"})
    assert not both.matches({"team": "payments", "environment": "dev"})
    assert not both.matches({"team": "shop", "environment": "prod"})


def test_match_labels_compares_values_exactly() -> None:
    only = selector(match_labels=(("environment", "production"),))
    assert not only.matches({"environment": "Production"})
    assert not only.matches({})
