"""The reloader against a real folder: a file caught mid-write is never served, a set that
loses a policy needs --allow-policy-removal, and the canary refuses a set that would deny
what already runs (judged as an UPDATE of each object to itself, and as its CREATE)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support import service
from webhook.admission.policies_reload import Loader, PolicyReloader
from webhook.admission.settings import ReloadSettings
from webhook.certs.files import GeneratedCertificates
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import make_request
from webhook.serve.build import Runtime, build_runtime

from .harness import DEFAULT_POLICIES, FIXTURES, base_settings

TEAM = (FIXTURES / "reload" / "team.yaml").read_text()
TEAM_NAMES = {"deny-nodeport-everywhere", "deny-loadbalancers-in-development"}
ALL_NAMES = TEAM_NAMES | {"deny-external-ips"}

FREEZE_UPDATES = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: services-are-frozen}
spec:
  failurePolicy: Fail
  match: {kinds: [Service], operations: [UPDATE]}
  validations:
    - expression: "false"
      message: Services are frozen
"""
ONE_LOADBALANCER = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: one-loadbalancer-per-namespace}
spec:
  match: {kinds: [Service]}
  limit:
    where: "object.spec.type == 'LoadBalancer'"
    max: 1
"""
NOT_LB_ONE = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: retire-lb-one}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "object.metadata.name != 'lb-one'"
      message: lb-one is retired
"""


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A policy folder: a shipped policy and a team's file of two."""
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(DEFAULT_POLICIES / "deny-external-ips.yaml", policies)
    (policies / "team.yaml").write_text(TEAM)
    return policies


@pytest.fixture()
def runtime(folder: Path, tmp_path: Path,
            certificates: GeneratedCertificates) -> Iterator[Runtime]:
    """The server's runtime over the fixture cluster (team-a holds two LoadBalancers), not
    listening: its reloader is driven directly."""
    built = build_runtime(base_settings(certificates, tmp_path, policies=(folder,)))
    assert built.state.policies is not None and built.state.policies.names == ALL_NAMES
    yield built
    built.cluster.stop()


class RecordingLoader:
    """load_policies, keeping every set it returned (what a reload parsed)."""

    def __init__(self) -> None:
        self.loaded: list[PolicySet] = []

    def __call__(self, *paths: str | Path) -> PolicySet:
        policies = load_policies(*paths)
        self.loaded.append(policies)
        return policies


def reloader(runtime: Runtime, *, loader: Loader = load_policies,
             sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
             **settings: Any) -> PolicyReloader:
    """A reloader over the runtime's folder and state, as serve builds one (build it before
    changing the files: it loads them as at start-up)."""
    built = PolicyReloader(runtime.settings.policies.paths, runtime.state, loader=loader,
                           settings=replace(ReloadSettings(run_suites=False), **settings),
                           sleep=sleep)
    built.load_initial()
    assert serving(runtime) == ALL_NAMES
    return built


async def no_wait(seconds: float) -> None:
    return None


def serving(runtime: Runtime) -> frozenset[str]:
    assert runtime.state.policies is not None
    return runtime.state.policies.names


def refusal(runtime: Runtime) -> tuple[str, str]:
    last = runtime.state.last_refusal
    assert last is not None, "the reload was refused"
    return last.reason, last.message


def denied_in_development(runtime: Runtime) -> set[str]:
    """The team policies that deny a NodePort and a LoadBalancer CREATE in dev."""
    assert runtime.state.policies is not None
    engine = runtime.state.policies.engine
    denied: set[str] = set()
    for kind in ("NodePort", "LoadBalancer"):
        request = make_request("CREATE", service(name="web", namespace="dev", type=kind))
        denied |= {v.policy for v in engine.evaluate(request, runtime.state.cluster).denials}
    return denied


def cut_points(text: str) -> list[int]:
    """Every line end, and the middle of every line: where a writer may pause."""
    points: set[int] = {0}
    start = 0
    for line in text.splitlines(keepends=True):
        points.add(start + len(line) // 2)
        start += len(line)
        points.add(start)
    return sorted(p for p in points if p < len(text))


# ---- torn writes ---------------------------------------------------------------------


def test_a_torn_write_that_stands_still_never_serves_a_set_missing_a_policy(
    runtime: Runtime, folder: Path,
) -> None:
    """A writer that stopped half-way (crashed, or paused longer than the settle time):
    the half stands still, so it is read; the guards must keep every policy serving."""
    reload = reloader(runtime, settle_seconds=0.0)
    team = folder / "team.yaml"
    reasons: dict[str, int] = {}
    points = cut_points(TEAM)
    assert len(points) > 30
    for point in points:
        team.write_text(TEAM[:point])
        if not asyncio.run(reload.reload("torn write")):
            reason, _ = refusal(runtime)
            reasons[reason] = reasons.get(reason, 0) + 1
        assert serving(runtime) == ALL_NAMES, f"cut at byte {point} lost a policy"
        assert denied_in_development(runtime) == TEAM_NAMES, f"cut at byte {point}"
        team.write_text(TEAM)  # the writer finishes
        assert asyncio.run(reload.reload("finished")), refusal(runtime)
    # An emptied file, or one cut between its policies, is a removal; a cut inside a
    # policy does not load, except in the last one's message (same verdicts, other text).
    assert set(reasons) == {"removal", "invalid"}, reasons
    assert sum(reasons.values()) >= len(points) - 2


def test_a_file_written_just_before_the_reload_is_read_again_once_it_is_finished(
    runtime: Runtime, folder: Path,
) -> None:
    team = folder / "team.yaml"
    half = TEAM[: len(TEAM) // 2]
    loader = RecordingLoader()

    async def finish_the_write(seconds: float) -> None:
        # The reloader waits before its second read; the writer finishes meanwhile.
        team.write_text(TEAM)

    # Settle time long enough that the half, written just now, is certainly "fresh".
    reload = reloader(runtime, loader=loader, sleep=finish_the_write, settle_seconds=3600.0)
    loader.loaded.clear()
    team.write_text(half)
    assert asyncio.run(reload.reload("files changed"))
    assert len(loader.loaded) == 1, "the half-written file was not even parsed"
    assert {p.name for p in loader.loaded[0].policies} == ALL_NAMES
    assert serving(runtime) == ALL_NAMES
    assert runtime.state.last_refusal is None


def test_a_file_that_changes_while_it_is_read_is_read_again(
    runtime: Runtime, folder: Path,
) -> None:
    team = folder / "team.yaml"
    loads: list[frozenset[str]] = []

    def racing_loader(*paths: str | Path) -> PolicySet:
        policies = load_policies(*paths)
        loads.append(frozenset(p.name for p in policies.policies))
        if len(loads) == 2:  # the writer finishes while the reloader reads the torn file
            team.write_text(TEAM)
        return policies

    reload = reloader(runtime, loader=racing_loader, sleep=no_wait, settle_seconds=0.0)
    team.write_text(TEAM.split("---")[0])  # torn after the first of its two policies
    assert asyncio.run(reload.reload("files changed")), refusal(runtime)
    assert loads[1] == ALL_NAMES - {"deny-loadbalancers-in-development"}, "the torn read"
    assert loads[2:] == [ALL_NAMES], "read again, whole, once"
    assert serving(runtime) == ALL_NAMES


def test_files_that_keep_changing_are_refused_and_the_set_keeps_serving(
    runtime: Runtime, folder: Path,
) -> None:
    team = folder / "team.yaml"

    def busy_writer(*paths: str | Path) -> PolicySet:
        policies = load_policies(*paths)
        with team.open("a") as handle:  # somebody appends on every read
            handle.write("# still writing\n")
        return policies

    reload = reloader(runtime, sleep=no_wait, settle_seconds=0.0)
    reload.loader = busy_writer  # from now on (not while it loads as at start-up)
    assert not asyncio.run(reload.reload("files changed"))
    reason, message = refusal(runtime)
    assert reason == "unsettled"
    assert str(team) in message and "rename it into place" in message
    assert serving(runtime) == ALL_NAMES
    assert runtime.state.metrics.registry.get_sample_value(
        "edgewarden_policy_reloads_refused_total", {"reason": "unsettled"}) == 1


# ---- removals ------------------------------------------------------------------------


def test_removing_a_policy_from_a_file_needs_allow_policy_removal(
    runtime: Runtime, folder: Path,
) -> None:
    reload = reloader(runtime)
    team = folder / "team.yaml"
    team.write_text(TEAM.split("---")[0])
    assert not asyncio.run(reload.reload("files changed"))
    reason, message = refusal(runtime)
    assert reason == "removal"
    assert message.startswith("the new policy set lacks 1 of the 3 serving policies: "
                              f"deny-loadbalancers-in-development (was in {team}, now "
                              "without it)")
    assert "--allow-policy-removal" in message
    assert serving(runtime) == ALL_NAMES

    reload.settings = replace(reload.settings, allow_removal=True)
    assert asyncio.run(reload.reload("files changed"))
    assert serving(runtime) == ALL_NAMES - {"deny-loadbalancers-in-development"}


def test_a_deleted_file_is_a_removal_too(runtime: Runtime, folder: Path) -> None:
    reload = reloader(runtime)
    (folder / "team.yaml").unlink()
    assert not asyncio.run(reload.reload("files changed"))
    reason, message = refusal(runtime)
    assert reason == "removal" and "now gone" in message
    assert serving(runtime) == ALL_NAMES


def test_moving_a_policy_to_another_file_is_not_a_removal(
    runtime: Runtime, folder: Path,
) -> None:
    reload = reloader(runtime)
    first, second = TEAM.split("---\n")
    (folder / "team.yaml").write_text(first)
    (folder / "team-lb.yaml").write_text(second)
    assert asyncio.run(reload.reload("files changed")), refusal(runtime)
    assert serving(runtime) == ALL_NAMES


# ---- the canary ----------------------------------------------------------------------


def test_a_policy_that_denies_every_update_of_existing_services_is_refused(
    runtime: Runtime, folder: Path,
) -> None:
    """Judging CREATEs alone would let this through: it matches UPDATE only."""
    reload = reloader(runtime)
    (folder / "freeze.yaml").write_text(FREEZE_UPDATES)
    assert not asyncio.run(reload.reload("files changed"))
    reason, message = refusal(runtime)
    assert reason == "denies"
    assert "denies 2 existing object(s) the serving set admits, of 2 judged (100%" in message
    assert "Service team-a/lb-one (UPDATE: services-are-frozen)" in message
    assert "Service team-a/lb-two (UPDATE: services-are-frozen)" in message
    assert "services-are-frozen" not in serving(runtime)


def test_lowering_a_cap_below_what_a_namespace_holds_is_not_a_denial(
    runtime: Runtime, folder: Path,
) -> None:
    """team-a holds two LoadBalancers; a cap of one denies the next, never an update of
    those two (SPEC), so the canary lets it through."""
    reload = reloader(runtime)
    (folder / "cap.yaml").write_text(ONE_LOADBALANCER)
    assert asyncio.run(reload.reload("files changed")), refusal(runtime)
    assert "one-loadbalancer-per-namespace" in serving(runtime)


def test_the_denial_share_is_configurable(runtime: Runtime, folder: Path) -> None:
    reload = reloader(runtime)
    (folder / "retire.yaml").write_text(NOT_LB_ONE)
    assert not asyncio.run(reload.reload("files changed"))
    reason, message = refusal(runtime)
    assert reason == "denies"
    assert "denies 1 existing object(s) the serving set admits, of 2 judged (50%" in message
    assert "Service team-a/lb-one (UPDATE, CREATE: retire-lb-one)" in message
    assert "lb-two" not in message
    # Half of what exists is not more than a share of one half.
    reload.settings = replace(reload.settings, max_canary_denial_share=0.5)
    assert asyncio.run(reload.reload("files changed")), refusal(runtime)
    assert "retire-lb-one" in serving(runtime)
