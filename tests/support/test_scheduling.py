"""tests/support/scheduling.py: the units of work ``pytest -n 2`` hands out."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.scheduling import CONTROL_PLANE_FOLDERS, LONGEST_FIRST, unit_of

TESTS = Path(__file__).parents[1]
# A conftest that imports the fixture registers it for its whole folder (one control plane
# per folder and session); a test module doing so gets its own, for the module only.
REGISTERS_THE_PLANE = re.compile(
    r"^\s*from \S*kube(?:plane|\.fixtures) import .*kube_control_plane", re.MULTILINE)


def test_the_control_plane_folders_are_those_whose_conftest_registers_one() -> None:
    registering = sorted(conftest.parent.name for conftest in TESTS.glob("*/conftest.py")
                         if REGISTERS_THE_PLANE.search(conftest.read_text()))
    assert registering, "no conftest registers kube_control_plane: the pattern is stale"
    assert registering == sorted(CONTROL_PLANE_FOLDERS)


def test_a_control_plane_folder_is_one_unit_and_any_other_test_goes_with_its_file() -> None:
    assert unit_of("tests/e2e/test_quota.py::test_cap[1]") == "tests/e2e"
    assert unit_of("tests/e2e/test_kubectl.py::test_apply") == "tests/e2e"
    assert unit_of("tests/policy/test_cel.py::test_map[a::b]") == "tests/policy/test_cel.py"
    assert unit_of("tests/helm/test_native_value.py::test_x") == "tests/helm/test_native_value.py"


def test_every_unit_named_first_exists() -> None:
    assert LONGEST_FIRST
    for unit in LONGEST_FIRST:
        assert (TESTS.parent / unit).exists(), unit
        assert unit_of(f"{unit}/test_x.py::t" if not unit.endswith(".py") else f"{unit}::t") \
            == unit
