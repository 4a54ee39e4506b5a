"""A reload can fail neither open nor closed: empty sets, sets that lose a policy nobody
asked to remove, sets that error on or deny what already runs, and sets whose own suites
fail are refused; a file caught mid-write is never served; the last good set keeps serving
and /readyz, /metrics and the log say why."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.admission.settings import ReloadSettings
from webhook.certs.files import GeneratedCertificates

from .harness import (
    DEFAULT_POLICIES,
    FIXTURES,
    SNI,
    RunningServer,
    base_settings,
    load_object,
    load_review,
    make_review,
    start_server,
)

WAIT = 15.0
REQUIRE_TEAM_LABEL = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: require-team-label}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "object.metadata.labels['team'] != ''"
"""
WARN_TEAM_LABEL = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: require-team-label}
spec:
  mode: Warn
  match: {kinds: [Service]}
  validations:
    - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
"""
FREEZE_SERVICES = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: services-are-frozen}
spec:
  failurePolicy: Fail
  match: {kinds: [Service]}
  validations:
    - expression: "false"
      message: Services are frozen
"""
TEAM = (FIXTURES / "reload" / "team.yaml").read_text()
TEAM_NAMES = ("deny-nodeport-everywhere", "deny-loadbalancers-in-development")

SHIPPED = len([p for p in DEFAULT_POLICIES.glob("*.yaml") if not p.name.endswith(".test.yaml")])


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def policies(tmp_path: Path) -> Path:
    """A copy of the shipped policies, suites and fixtures, to change while serving."""
    folder = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES, folder)
    return folder


@pytest.fixture()
def extra(tmp_path: Path) -> Path:
    """A second --policies folder, without suites, for a team's own policies."""
    folder = tmp_path / "extra"
    folder.mkdir()
    return folder


@pytest.fixture()
def server(policies: Path, extra: Path, tmp_path: Path,
           certificates: GeneratedCertificates) -> Iterator[RunningServer]:
    settings = base_settings(certificates, tmp_path, policies=(policies, extra))
    running = start_server(settings, certificates.ca_file)
    yield running
    running.stop()


def _nodeport_in_production_denied(server: RunningServer) -> bool:
    return not server.review("/validate", load_review("nodeport-create-payments.json"))["allowed"]


def _refused(server: RunningServer, reason: str) -> bool:
    return server.metric("edgewarden_policy_reloads_refused_total", reason=reason) >= 1


def _still_serving_the_shipped(server: RunningServer) -> None:
    assert _nodeport_in_production_denied(server), "the last good set keeps serving"
    assert server.metric("edgewarden_policies_loaded") == SHIPPED
    assert server.metric("edgewarden_policy_reload_refused") == 1
    ready = server.get("/readyz")
    assert ready.status_code == 200, "a refused reload leaves the pod ready"
    assert len(ready.json()["policies"]["serving"]) == SHIPPED


def test_a_set_that_errors_on_existing_objects_is_refused_by_the_canary(
    server: RunningServer, extra: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="edgewarden.server")
    (extra / "team.yaml").write_text(REQUIRE_TEAM_LABEL)
    wait_for(lambda: _refused(server, "canary"), "the canary to refuse the set")
    _still_serving_the_shipped(server)
    last = server.get("/readyz").json()["policies"]["lastReload"]
    assert last["result"] == "refused" and last["reason"] == "canary"
    assert "require-team-label on Service team-a/lb-one" in last["message"]
    assert any("refused (canary)" in r.getMessage() for r in caplog.records)
    # Fixed, the set is accepted and the refusal is cleared.
    (extra / "team.yaml").write_text(WARN_TEAM_LABEL)
    wait_for(lambda: server.metric("edgewarden_policies_loaded") == SHIPPED + 1,
             "the fixed set")
    assert server.metric("edgewarden_policy_reload_refused") == 0
    assert "lastReload" not in server.get("/readyz").json()["policies"]


def test_emptying_every_file_is_refused(server: RunningServer, policies: Path) -> None:
    for file in policies.glob("*.yaml"):
        if not file.name.endswith(".test.yaml"):
            file.write_text("")
    wait_for(lambda: _refused(server, "empty"), "the empty set to be refused")
    _still_serving_the_shipped(server)


def test_deleting_every_policy_file_is_refused(server: RunningServer, policies: Path) -> None:
    for file in policies.glob("*.yaml"):
        file.unlink()
    wait_for(lambda: _refused(server, "empty"), "the empty folder to be refused")
    _still_serving_the_shipped(server)


def test_deleting_the_folder_is_refused(server: RunningServer, policies: Path) -> None:
    shutil.rmtree(policies)
    wait_for(lambda: _refused(server, "invalid"), "the missing folder to be refused")
    _still_serving_the_shipped(server)


def test_a_fail_policy_that_denies_every_existing_service_is_refused_and_names_them(
    server: RunningServer, extra: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="edgewarden.server")
    (extra / "freeze.yaml").write_text(FREEZE_SERVICES)
    wait_for(lambda: _refused(server, "denies"), "the canary to refuse the set")
    _still_serving_the_shipped(server)
    last = server.get("/readyz").json()["policies"]["lastReload"]
    assert last["result"] == "refused" and last["reason"] == "denies"
    message = last["message"]
    assert "denies 2 existing object(s) the serving set admits, of 2 judged (100%" in message
    for name in ("lb-one", "lb-two"):
        assert f"Service team-a/{name} (UPDATE, CREATE: services-are-frozen)" in message
    assert "--max-canary-denial-share" in message
    assert any("refused (denies)" in r.getMessage() and "team-a/lb-one" in r.getMessage()
               for r in caplog.records)
    # What it would have done: an UPDATE of an existing Service is still admitted.
    lb_one = load_object("services/loadbalancer.yaml")
    lb_one["metadata"] = {"name": "lb-one", "namespace": "team-a"}
    update = server.review("/validate", make_review("UPDATE", "team-a", lb_one, lb_one))
    assert update["allowed"] is True


def test_removing_one_policy_file_is_refused(server: RunningServer, policies: Path) -> None:
    removed = policies / "deny-external-ips.yaml"
    removed.unlink()
    (policies / "deny-external-ips.test.yaml").unlink()
    wait_for(lambda: _refused(server, "removal"), "the removal to be refused")
    _still_serving_the_shipped(server)
    message = server.get("/readyz").json()["policies"]["lastReload"]["message"]
    assert message.startswith(f"the new policy set lacks 1 of the {SHIPPED} serving "
                              f"policies: deny-external-ips (was in {removed}, now gone)")
    assert "--allow-policy-removal" in message


@pytest.fixture()
def team_folder(extra: Path) -> Path:
    (extra / "team.yaml").write_text(TEAM)
    return extra


def _serve(certificates: GeneratedCertificates, tmp_path: Path, folders: tuple[Path, ...],
           **reload: Any) -> RunningServer:
    settings = base_settings(certificates, tmp_path, policies=folders,
                             reload=ReloadSettings(**reload))
    return start_server(settings, certificates.ca_file)


@pytest.mark.parametrize("allow_policy_removal", [False, True])
def test_emptying_one_file_needs_allow_policy_removal(
    allow_policy_removal: bool, policies: Path, team_folder: Path, tmp_path: Path,
    certificates: GeneratedCertificates,
) -> None:
    server = _serve(certificates, tmp_path, (policies, team_folder),
                    allow_removal=allow_policy_removal)
    try:
        assert server.metric("edgewarden_policies_loaded") == SHIPPED + 2
        (team_folder / "team.yaml").write_text("")
        if allow_policy_removal:
            wait_for(lambda: server.metric("edgewarden_policies_loaded") == SHIPPED,
                     "the set without the team's policies")
            assert server.metric("edgewarden_policy_reload_refused") == 0
            return
        wait_for(lambda: _refused(server, "removal"), "the emptied file to be refused")
        assert server.metric("edgewarden_policies_loaded") == SHIPPED + 2
        message = server.get("/readyz").json()["policies"]["lastReload"]["message"]
        assert "lacks 2 of the" in message
        for name in TEAM_NAMES:
            assert f"{name} (was in {team_folder / 'team.yaml'}, now empty)" in message
    finally:
        server.stop()


class Reviews:
    """Admission reviews sent over and over from a thread, each answer kept."""

    def __init__(self, server: RunningServer, reviews: list[tuple[str, dict[str, Any]]]):
        self.server = server
        self.reviews = reviews
        self.answers: list[tuple[str, bool, str]] = []  # (what, allowed, message)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reviews", daemon=True)

    def _run(self) -> None:
        with self.server.client() as client:
            while not self._stop.is_set():
                for what, review in self.reviews:
                    response = client.post("/validate", json=review, extensions=SNI)
                    answer = response.json()["response"]
                    self.answers.append((what, answer["allowed"],
                                         answer.get("status", {}).get("message", "")))

    def __enter__(self) -> Reviews:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT)


@pytest.mark.parametrize("cut", ["half the bytes", "between its policies"])
def test_a_torn_write_never_serves_a_partial_set(
    cut: str, policies: Path, team_folder: Path, tmp_path: Path,
    certificates: GeneratedCertificates,
) -> None:
    """Write part of the file, let the server try to reload it, finish the write: every
    admission answered meanwhile is the full set's. Cut between its policies, the part
    loads (the first policy alone): only the removal guard keeps it out."""
    point = len(TEAM) // 2 if cut == "half the bytes" else TEAM.index("---\n") + 4
    server = _serve(certificates, tmp_path, (policies, team_folder))
    team = team_folder / "team.yaml"
    expected = {"NodePort in dev": "deny-nodeport-everywhere",
                "LoadBalancer in dev": "deny-loadbalancers-in-development"}
    reviews = [
        ("NodePort in dev", make_review("CREATE", "dev", load_object("services/nodeport.yaml"))),
        ("LoadBalancer in dev",
         make_review("CREATE", "dev", load_object("services/loadbalancer.yaml"))),
    ]
    try:
        with Reviews(server, reviews) as flow:
            wait_for(lambda: len(flow.answers) >= 10, "reviews to be answered")
            refused = server.metric("edgewarden_policy_load_errors_total")
            reloaded = server.metric("edgewarden_policy_reloads_total")
            with team.open("w") as writer:
                writer.write(TEAM[:point])
                writer.flush()
                wait_for(lambda: server.metric("edgewarden_policy_load_errors_total") > refused,
                         "the server to refuse the half-written file")
                during = len(flow.answers)
                writer.write(TEAM[point:])
            wait_for(lambda: server.metric("edgewarden_policy_reloads_total") > reloaded,
                     "the finished file to be reloaded")
            after = len(flow.answers)
            wait_for(lambda: len(flow.answers) >= after + 10, "reviews after the reload")
        assert during > 10
        assert flow.answers
        for what, allowed, message in flow.answers:
            assert not allowed, f"{what} was admitted: a partial set served"
            assert f"[{expected[what]}]" in message, (what, message)
        assert server.metric("edgewarden_policies_loaded") == SHIPPED + 2
        assert server.metric("edgewarden_policy_reload_refused") == 0
    finally:
        server.stop()


def test_a_set_whose_own_suites_fail_is_refused(server: RunningServer, policies: Path) -> None:
    # A valid change of behaviour that the suite beside it contradicts: NodePort allowed.
    nodeport = policies / "deny-nodeport-in-production.yaml"
    nodeport.write_text(nodeport.read_text().replace("mode: Enforce", "mode: Warn"))
    wait_for(lambda: _refused(server, "suites"), "the failing suites to refuse the set")
    _still_serving_the_shipped(server)


def test_serve_refuses_to_start_with_no_policies(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "from webhook.cli import main; main()", "serve", "--dev",
         "--port", "0", "--policies", str(tmp_path / "policies")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "the new policy set is empty" in result.stderr
    assert "--allow-empty-policies" in result.stderr
