"""``edgewarden diff`` as a user runs it: against the previous commit in a git repository
(issue 24's "done when"), between two folders, over manifests, a cluster dump and an
API-server audit log; Markdown for a pull request, JSON, an 80-column table, exit codes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.kubeapi import KubeApi
from tests.support import cli, namespace
from tests.support import service as service_object
from webhook.errors import ManifestError
from webhook.offline.kustomize import find_kubectl

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "audit" / "fixtures"
DIFF_SCHEMA = REPO / "webhook" / "offline" / "schemas" / "diff.schema.json"

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {environment: production}}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging, labels: {environment: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox, labels: {environment: dev}}
"""


def service(namespace: str, name: str, kind: str = "NodePort") -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec:\n  type: {kind}\n  selector: {{app: {name}}}\n"
            "  ports: [{port: 80, targetPort: 8080}]\n")


def diff(*args: str) -> Result:
    return cli.run("diff", *args)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Platform Team", "-c", "user.email=platform@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=repo, capture_output=True, text=True, check=True, timeout=60)
    return result.stdout


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A platform repository: the shipped policies and a service's manifests, committed;
    then a commit that tightens deny-nodeport-in-production to cover staging too."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "platform"
    shutil.copytree(REPO / "policies", repo / "policies",
                    ignore=shutil.ignore_patterns("fixtures", "*.test.yaml"))
    (repo / "k8s").mkdir()
    (repo / "k8s" / "namespaces.yaml").write_text(NAMESPACES)
    (repo / "k8s" / "services.yaml").write_text("---\n".join([
        service("shop", "legacy-admin"),           # denied before and after
        service("staging", "debug"),               # newly denied
        service("staging", "metrics"),             # newly denied
        service("staging", "web", "ClusterIP"),    # fine before and after
        service("sandbox", "experiment"),          # NodePort outside production: fine
    ]))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "policies and the shop's manifests")
    policy = repo / "policies" / "deny-nodeport-in-production.yaml"
    text = policy.read_text()
    tightened = text.replace("values: [production, prod]", "values: [production, prod, staging]")
    assert tightened != text
    policy.write_text(tightened)
    git(repo, "commit", "-q", "-am", "deny NodePort in staging too")
    monkeypatch.chdir(repo)
    return repo


def markdown_rows(text: str) -> list[list[str]]:
    """The rows of the changes table (the one whose header starts with | Change |)."""
    rows: list[list[str]] = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("| Change |"):
            in_table = True
            continue
        if in_table and line.startswith("|---"):
            continue
        if in_table and line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif in_table:
            break
    return rows


def test_base_head_1_lists_exactly_the_newly_denied_objects_in_markdown(
    repository: Path,
) -> None:
    result = diff("--base", "HEAD~1", "-f", "k8s/", "-o", "markdown")
    assert result.exit_code == 1, result.output
    rows = markdown_rows(result.stdout)
    assert rows, result.stdout
    newly_denied = {re.search(r"`([^`]+)`", row[1]).group(1)  # type: ignore[union-attr]
                    for row in rows if "newly denied" in row[0]}
    assert newly_denied == {"Service/staging/debug", "Service/staging/metrics"}
    assert all("newly denied" in row[0] for row in rows), "nothing else changed"
    assert {row[2] for row in rows} == {"deny-nodeport-in-production"}
    assert "**2 objects admitted before would be denied now.**" in result.stdout
    assert "`HEAD~1:policies` → `policies (working tree)`" in result.stdout
    assert "Policies: changed deny-nodeport-in-production." in result.stdout
    # Counts per policy, for the reviewer who skims.
    assert "| deny-nodeport-in-production | 2 | 0 | 0 | 0 |" in result.stdout
    # Both decisions are shown: not applied before (the namespace did not match), denied
    # with the policy's message after.
    assert rows[0][3] == "not applied"
    assert rows[0][4].startswith("deny: Service debug is type NodePort")


def test_allow_new_denials_exits_0_and_the_working_tree_counts(repository: Path) -> None:
    result = diff("--base", "HEAD~1", "-f", "k8s/", "--allow-new-denials", "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["newDenials"] == 2
    # An uncommitted edit is what --base compares with: loosen it again, nothing is new.
    policy = repository / "policies" / "deny-nodeport-in-production.yaml"
    policy.write_text(policy.read_text().replace(", staging]", "]"))
    quiet = diff("--base", "HEAD~1", "-f", "k8s/", "-o", "json")
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["changes"] == []
    # ... and against HEAD that same edit newly allows the two staging Services.
    loosened = json.loads(diff("--base", "HEAD", "-f", "k8s/", "-o", "json").stdout)
    assert {(c["change"], c["resource"]["name"]) for c in loosened["changes"]} == {
        ("newly-allowed", "debug"), ("newly-allowed", "metrics")}
    assert loosened["changes"][0]["before"] == {
        "admitted": False, "outcome": "deny", "patch": [],
        "message": loosened["changes"][0]["before"]["message"]}
    assert loosened["changes"][0]["after"]["admitted"] is True


def test_json_carries_both_decisions_and_the_policy(repository: Path) -> None:
    report = json.loads(diff("--base", "HEAD~1", "-f", "k8s/", "-o", "json").stdout)
    jsonschema.validate(report, json.loads(DIFF_SCHEMA.read_text()))
    assert report["kind"] == "PolicyDiff"
    assert report["policies"] == {"added": [], "removed": [],
                                  "changed": ["deny-nodeport-in-production"]}
    [first, second] = report["changes"]
    assert second["resource"]["name"] == "metrics"
    assert first["change"] == "newly-denied" and first["newDenial"] is True
    assert first["policy"] == "deny-nodeport-in-production"
    assert first["where"].startswith("k8s/services.yaml:")
    assert first["before"]["outcome"] is None and first["after"]["outcome"] == "deny"
    assert report["byPolicy"]["deny-nodeport-in-production"]["newly-denied"] == 2


def test_text_fits_80_columns(repository: Path) -> None:
    result = diff("--base", "HEAD~1", "-f", "k8s/")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, result.stdout
    assert "newly denied" in result.stdout and "staging/debug" in result.stdout


def test_max_rows_caps_the_markdown_and_says_how_many_are_left(repository: Path) -> None:
    result = diff("--base", "HEAD~1", "-f", "k8s/", "-o", "markdown", "--max-rows", "1")
    assert len(markdown_rows(result.stdout)) == 1
    assert "…and 1 more change(s) not shown" in result.stdout
    assert "| deny-nodeport-in-production | 2 |" in result.stdout, "counts cover every row"


def test_a_policy_folder_new_at_the_ref_makes_every_policy_new(repository: Path) -> None:
    shutil.copytree(repository / "policies", repository / "candidate")
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "candidate policies")
    result = diff("--base", "HEAD~1", "-p", "candidate", "-f", "k8s/", "-o", "json")
    report = json.loads(result.stdout)
    assert "no policies at HEAD~1: every policy is new" in report["notes"]
    assert "deny-nodeport-in-production" in report["policies"]["added"]
    assert result.exit_code == 1  # the shop's legacy NodePort was admitted by no policy


def test_two_folders_over_a_cluster_dump(tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(REPO / "policies", old, ignore=shutil.ignore_patterns("fixtures"))
    new = tmp_path / "new"
    shutil.copytree(old, new)
    limit = new / "limit-loadbalancers-per-namespace.yaml"
    limit.write_text(limit.read_text().replace("      : 2\n", "      : 0\n"))
    state = REPO / "examples" / "cluster-state.yaml"
    same = diff(str(old), str(old), "--cluster-state", str(state), "-o", "json")
    assert same.exit_code == 0 and json.loads(same.stdout)["changes"] == []
    result = diff(str(old), str(new), "--cluster-state", str(state), "-o", "json")
    report = json.loads(result.stdout)
    assert report["source"] == "cluster"
    changes = {(c["change"], c["resource"]["kind"], c["resource"]["name"])
               for c in report["changes"]}
    # A cap of 0 puts the namespaces with one LoadBalancer over it; the one over already
    # stays over, with another count in its message.
    assert changes == {("newly-denied", "Namespace", "shop-production"),
                       ("newly-denied", "Namespace", "shop-staging"),
                       ("changed-message", "Namespace", "legacy-billing")}
    assert {c["policy"] for c in report["changes"]} == {"limit-loadbalancers-per-namespace"}
    assert result.exit_code == 1


def test_diff_over_an_audit_log_compares_two_sets_request_by_request(tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(REPO / "policies", new, ignore=shutil.ignore_patterns("fixtures"))
    limit = new / "limit-loadbalancers-per-namespace.yaml"
    limit.write_text(limit.read_text().replace("      : 2\n", "      : 1\n"))
    result = diff(str(REPO / "policies"), str(new),
                  "--audit-log", str(FIXTURES / "apiserver-audit.log"), "-o", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, json.loads(DIFF_SCHEMA.read_text()))
    assert report["source"] == "audit log"
    changes = [(c["change"], c["resource"]["name"], c["where"].rsplit(":", 1)[1])
               for c in report["changes"]]
    # lb-3's first create was denied under both; the message says another cap.
    assert changes == [("newly-denied", "lb-2", "7"), ("newly-denied", "lb-3", "10"),
                       ("changed-message", "lb-3", "8")]
    assert report["changes"][2]["before"]["message"].endswith("(namespace team-a has 2 of 2)")
    assert report["changes"][2]["after"]["message"].endswith("(namespace team-a has 2 of 1)")
    assert report["changes"][0]["request"] == "create by admin"


@pytest.mark.parametrize(("args", "message"), [
    ((), "nothing to judge"),
    (("-f", "x.yaml"), "give the two policy sets"),
    (("a",), "nothing to judge"),
    (("a", "-f", "x.yaml"), "diff takes two policy sets"),
    (("a", "b", "--base", "HEAD", "-f", "x.yaml"), "not both"),
    (("--base", "HEAD", "-f", "x.yaml", "--audit-log", "y.log"), "not both"),
    (("--base", "HEAD", "--live", "--cluster-state", "s.yaml"), "not both"),
])
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], message: str,
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = diff(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_an_unknown_ref_is_a_clear_error(repository: Path) -> None:
    result = diff("--base", "no-such-branch", "-f", "k8s/")
    assert result.exit_code == 2
    assert "--base no-such-branch: no such commit here" in result.output


def test_base_outside_a_repository_is_a_clear_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    shutil.copytree(REPO / "policies", tmp_path / "policies",
                    ignore=shutil.ignore_patterns("fixtures"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = diff("--base", "HEAD", "-f", str(REPO / "policies" / "fixtures" / "manifests"))
    assert result.exit_code == 2
    assert "--base needs a git repository" in result.output


def test_policies_that_do_not_load_at_the_ref_are_named_as_the_commit_has_them(
    repository: Path,
) -> None:
    broken = repository / "policies" / "broken.yaml"
    broken.write_text("apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\n"
                      "metadata: {name: broken}\nspec: {match: {kind: [Service]}}\n")
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "a broken policy")
    broken.unlink()
    result = diff("--base", "HEAD", "-f", "k8s/")
    assert result.exit_code == 2, result.output
    assert "HEAD:policies/broken.yaml:4" in result.output
    assert "edgewarden-diff-" not in result.output


def test_live_snapshot_under_two_sets(kube_api: KubeApi, kubeconfig_env: Path,
                                      tmp_path: Path) -> None:
    """--live lists the cluster once (the API double here) and both sets judge it; with
    manifests, the live objects are what exists (a manifest naming one is an UPDATE)."""
    kube_api.create(namespace(name="staging", labels={"environment": "staging"}))
    kube_api.create(service_object(name="debug", namespace="staging", type="NodePort",
                                   ports=[{"port": 80, "nodePort": 30080}]))
    old = tmp_path / "old"
    shutil.copytree(REPO / "policies", old, ignore=shutil.ignore_patterns("fixtures"))
    new = tmp_path / "new"
    shutil.copytree(old, new)
    policy = new / "deny-nodeport-in-production.yaml"
    policy.write_text(policy.read_text().replace("[production, prod]",
                                                 "[production, prod, staging]"))
    result = diff(str(old), str(new), "--live", "-o", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["source"] == "cluster"
    assert [(c["change"], c["resource"]["name"]) for c in report["changes"]] == [
        ("newly-denied", "debug")]
    manifest = tmp_path / "debug.yaml"
    manifest.write_text(service("staging", "debug", "ClusterIP"))  # the same, made ClusterIP
    fixed = diff(str(old), str(new), "--live", "-f", str(manifest), "-o", "json")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["changes"] == []


def test_a_kustomization_is_judged_as_kubectl_renders_it(repository: Path) -> None:
    try:
        find_kubectl()
    except ManifestError as missing:
        pytest.skip(str(missing))
    (repository / "k8s" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [namespaces.yaml, services.yaml]\nnamePrefix: shop-\n")
    result = diff("--base", "HEAD~1", "-k", "k8s", "-o", "json")
    assert result.exit_code == 1, result.output
    names = {c["resource"]["name"] for c in json.loads(result.stdout)["changes"]}
    assert names == {"shop-debug", "shop-metrics"}


def test_promoting_a_shadow_policy_lists_what_the_shadow_period_saw(tmp_path: Path) -> None:
    """Promotion is one field (spec.shadow: true -> false); the diff of that change lists
    the objects the promoted policy now denies, as the shadow metrics counted them."""
    policy = ("apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\n"
              "metadata: {name: no-nodeport-anywhere}\n"
              "spec:\n  shadow: SHADOW\n  mode: Enforce\n"
              "  match: {kinds: [Service], operations: [CREATE, UPDATE]}\n"
              "  validations:\n    - expression: \"object.spec.type != 'NodePort'\"\n"
              "      message: NodePort is refused everywhere\n")
    for side, shadow in (("old", "true"), ("new", "false")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "no-nodeport.yaml").write_text(policy.replace("SHADOW", shadow))
    manifests = tmp_path / "app.yaml"
    manifests.write_text(NAMESPACES + "---\n" + service("sandbox", "admin") + "---\n"
                         + service("sandbox", "web", "ClusterIP"))
    result = diff(str(tmp_path / "old"), str(tmp_path / "new"), "-f", str(manifests),
                  "-o", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    denied = [change for change in report["changes"] if change["change"] == "newly-denied"]
    assert [change["resource"]["name"] for change in denied] == ["admin"], report
    assert denied[0]["policy"] == "no-nodeport-anywhere" and denied[0]["before"]["admitted"]
    assert any("shadow policies of the old set are not enforced" in note
               for note in report["notes"]), report["notes"]
