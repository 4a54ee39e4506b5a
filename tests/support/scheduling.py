"""How ``pytest -n 2`` (pytest-xdist; scripts/test runs the suite so) shares the tests out.

A unit of work, which one worker runs from start to end, is a test file, except for the
folders whose tests share a session-scoped control plane (tests/kube: etcd, kube-apiserver,
kube-controller-manager) and what they install on it (CRDs, RBAC, a running webhook): each
such folder is one unit, so its control plane starts once, on one worker, and its tests run
in their usual order against it. (xdist's own ``load`` would send single tests of a file to
both workers and start every module- and session-scoped server twice.)

The units known to take longest are handed out first, so that neither worker is left with
one of them at the end while the other idles; the rest follow in collection order. Without
``-n`` nothing here changes anything.
"""

from __future__ import annotations

from typing import Any

import pytest

# Folders whose conftest registers the session fixture ``kube_control_plane``
# (tests/support/test_scheduling.py keeps this list in step with the conftests).
CONTROL_PLANE_FOLDERS = ("crds_apiserver", "e2e", "image", "lifecycle", "native", "replicas")

# The longest units, longest first (measured on the 2-core CI host; a rough order is
# enough; tests/support/test_scheduling.py checks that each still names a unit).
LONGEST_FIRST = (
    "tests/crds_apiserver",
    "tests/e2e",
    "tests/replicas",
    "tests/docs/test_docs_run_as_printed.py",
    "tests/helm/test_chart.py",
    "tests/differential/test_paths_agree.py",
    "tests/lifecycle",
    "tests/policy/test_cel_limits.py",
    "tests/image",
    "tests/native",
    "tests/ci/test_action_install.py",
)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its control-plane folder, else its file."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in CONTROL_PLANE_FOLDERS:
        return f"tests/{parts[1]}"
    return path


def _rank(nodeid: str) -> int:
    unit = unit_of(nodeid)
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In an xdist worker only: every worker collects and sorts alike, and the controller
    # hands out the units in this order. (A stable sort: within a unit, and among the
    # units not named, the collection order stays.)
    if hasattr(config, "workerinput"):  # what xdist gives its workers' configs
        items.sort(key=lambda item: _rank(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The units above, for ``-n N`` with xdist's default distribution; an explicit
    ``--dist`` other than ``load`` is left to xdist."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    # The workers' order (longest first) is the order to hand units out in; xdist would
    # otherwise sort them by their number of tests.
    config.option.loadscopereorder = False
    return UnitScheduling(config, log)
