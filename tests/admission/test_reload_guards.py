"""A reload cannot fail open: empty or shrunken sets, sets that error on what already runs,
and sets whose own suites fail are refused; the last good set keeps serving and /readyz,
/metrics and the log say why."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from webhook.certs.files import GeneratedCertificates

from .harness import (
    DEFAULT_POLICIES,
    RunningServer,
    base_settings,
    load_review,
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


def test_dropping_most_policies_is_refused(server: RunningServer, policies: Path) -> None:
    keep = ("deny-nodeport-in-production.yaml", "limit-loadbalancers-per-namespace.yaml")
    dropped = [p for p in policies.glob("*.yaml")
               if not p.name.endswith(".test.yaml") and p.name not in keep]
    for policy in dropped:
        policy.unlink()
        policy.with_name(policy.stem + ".test.yaml").unlink()
    wait_for(lambda: _refused(server, "shrink"), "the shrunken set to be refused")
    _still_serving_the_shipped(server)
    assert f"drops {len(dropped)} of the {SHIPPED} serving policies" in (
        server.get("/readyz").json()["policies"]["lastReload"]["message"]
    )


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
