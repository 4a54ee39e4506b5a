"""What ``diff`` calls a change: each kind, from two real policy sets judging the same
manifests, and the rules that decide the exit code (a rename is no new denial)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from webhook.offline.diff import (
    Change,
    DiffReport,
    Side,
    classify,
    diff_scans,
    policy_delta,
)
from webhook.offline.manifests import parse_manifests
from webhook.offline.reports.diff import render_markdown
from webhook.offline.results import Outcome
from webhook.offline.scan import check_manifests
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).resolve().parents[2]

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {environment: production}}
---
apiVersion: v1
kind: Service
metadata: {name: admin, namespace: shop}
spec: {type: NodePort, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: shop}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped policies twice: ``old`` as shipped, ``new`` for a test to edit."""
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        shutil.copytree(REPO / "policies", folder,
                        ignore=shutil.ignore_patterns("fixtures", "*.test.yaml"))
    return old, new


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / f"{name}.yaml"
    text = path.read_text()
    assert old in text, f"{name}: {old!r}"
    path.write_text(text.replace(old, new))


def compared(old: Path, new: Path) -> DiffReport:
    manifests = parse_manifests(MANIFESTS, "shop.yaml")
    scans = [check_manifests(manifests, load_policies(folder), now=0.0) for folder in (old, new)]
    report = DiffReport(str(old), str(new), "manifests")
    report.policies = policy_delta([old], [new])
    return diff_scans(scans[0], scans[1], report)


def changes(report: DiffReport) -> set[tuple[str, str, str]]:
    return {(c.change.key, c.subject.resource.name, c.policy) for c in report.changes}


def test_the_same_policies_change_nothing(folders: tuple[Path, Path]) -> None:
    report = compared(*folders)
    assert report.judged == 3
    assert report.changes == [] and not report.failed
    assert report.policies.describe() == "no policy document changed"


def test_enforce_to_warn_is_newly_allowed_and_warn_to_enforce_newly_denied(
    folders: tuple[Path, Path],
) -> None:
    old, new = folders
    edit(new, "deny-nodeport-in-production", "mode: Enforce", "mode: Warn")
    loosened = compared(old, new)
    assert changes(loosened) == {("newly-allowed", "admin", "deny-nodeport-in-production")}
    [change] = loosened.changes
    assert (change.before.outcome, change.after.outcome) == (Outcome.DENY, Outcome.WARN)
    assert (change.admitted_before, change.admitted_after) == (False, True)
    assert not loosened.failed
    tightened = compared(new, old)
    assert changes(tightened) == {("newly-denied", "admin", "deny-nodeport-in-production")}
    assert tightened.failed and [s.ref for s in tightened.new_denials] == ["Service/shop/admin"]


def test_a_renamed_policy_changes_rows_but_no_verdict(folders: tuple[Path, Path]) -> None:
    old, new = folders
    edit(new, "deny-nodeport-in-production", "name: deny-nodeport-in-production",
         "name: no-nodeport-in-production")
    report = compared(old, new)
    assert changes(report) == {("newly-allowed", "admin", "deny-nodeport-in-production"),
                               ("newly-denied", "admin", "no-nodeport-in-production")}
    assert not report.failed, "admin was denied before too: no new denial"
    assert report.policies.added == ("no-nodeport-in-production",)
    assert report.policies.removed == ("deny-nodeport-in-production",)


def test_a_changed_patch_and_a_changed_message(folders: tuple[Path, Path]) -> None:
    old, new = folders
    edit(new, "internal-loadbalancer", "flavour: aws", "flavour: gcp")
    edit(new, "deny-nodeport-in-production", "'Service ' + object.metadata.name",
         "'The Service ' + object.metadata.name")
    report = compared(old, new)
    assert changes(report) == {("changed-patch", "edge", "internal-loadbalancer"),
                               ("changed-message", "admin", "deny-nodeport-in-production")}
    patch = next(c for c in report.changes if c.change is Change.CHANGED_PATCH)
    assert "aws-load-balancer-internal" in str(patch.before.patch)
    assert "networking.gke.io/load-balancer-type" in str(patch.after.patch)
    assert not report.failed
    assert set(report.policies.changed) == {"internal-loadbalancer",
                                            "deny-nodeport-in-production"}


def test_a_new_warn_policy_is_newly_warned(folders: tuple[Path, Path]) -> None:
    old, new = folders
    (new / "warn-web.yaml").write_text("""\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: warn-unlabelled-services}
spec:
  mode: Warn
  match: {kinds: [Service]}
  validations:
    - expression: "has(object.metadata.labels)"
      message: "label your Services"
""")
    report = compared(old, new)
    assert changes(report) == {("newly-warned", name, "warn-unlabelled-services")
                               for name in ("admin", "edge", "web")}
    assert not report.failed
    markdown = render_markdown(report, max_rows=2)
    assert "Nothing admitted before would be denied now." in markdown
    assert "…and 1 more change(s) not shown" in markdown
    assert "| warn-unlabelled-services | 0 | 0 | 3 | 0 |" in markdown


@pytest.mark.parametrize(("before", "after", "change"), [
    (Side(Outcome.PASS), Side(Outcome.DENY, "no"), Change.NEWLY_DENIED),
    (Side(None), Side(Outcome.DENY, "no"), Change.NEWLY_DENIED),
    (Side(Outcome.WARN, "hm"), Side(Outcome.DENY, "no"), Change.NEWLY_DENIED),
    (Side(Outcome.DENY, "no"), Side(Outcome.EXEMPT, "no", would="deny"), Change.NEWLY_ALLOWED),
    (Side(Outcome.DENY, "no"), Side(None), Change.NEWLY_ALLOWED),
    (Side(Outcome.AUDIT, "rec"), Side(Outcome.WARN, "hm"), Change.NEWLY_WARNED),
    (Side(Outcome.WARN, "hm"), Side(Outcome.PASS), Change.NO_LONGER_WARNED),
    (Side(Outcome.PASS), Side(Outcome.AUDIT, "rec"), Change.CHANGED_AUDIT),
    (Side(Outcome.EXEMPT, "x", would="warn"), Side(Outcome.EXEMPT, "x", would="deny"),
     Change.CHANGED_AUDIT),
    (Side(Outcome.PATCH, patch=({"op": "add", "path": "/a"},)), Side(None),
     Change.CHANGED_PATCH),
    (Side(Outcome.DENY, "no"), Side(Outcome.DENY, "never"), Change.CHANGED_MESSAGE),
    (Side(Outcome.PASS), Side(None), None),
    (Side(Outcome.DENY, "no"), Side(Outcome.DENY, "no"), None),
])
def test_classify(before: Side, after: Side, change: Change | None) -> None:
    assert classify(before, after) is change
