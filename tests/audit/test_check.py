"""`edgewarden check`: manifests judged as CREATEs, in order, with exit codes users rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from webhook.cli.app import app

from .helpers import FIXTURES, POLICIES, RENDERED, run

NODEPORT_IN_STAGING = """\
apiVersion: v1
kind: Service
metadata: {name: debug, namespace: staging}
spec:
  type: NodePort
  ports: [{port: 80}]
"""


def check_json(*args: str, stdin: str | None = None) -> tuple[int, dict]:
    result = run("check", "--policies", POLICIES, "-o", "json", *args, stdin=stdin)
    return result.exit_code, json.loads(result.stdout)


def verdicts(report: dict) -> dict[str, list[tuple[str, str]]]:
    return {
        f"{r['resource']['kind']}/{r['resource']['name']}": [
            (f["policy"], f["result"]) for f in r["findings"] if f["result"] != "pass"
        ]
        for r in report["results"]
    }


def test_third_loadbalancer_of_a_rendered_chart_is_denied_and_check_exits_1() -> None:
    code, report = check_json("-f", RENDERED)
    assert code == 1
    found = verdicts(report)
    assert found["Service/shop-web"] == []
    assert ("limit-loadbalancers-per-namespace", "deny") not in found["Service/shop-api"]
    assert ("limit-loadbalancers-per-namespace", "deny") in found["Service/shop-metrics"]


def test_nodeport_is_denied_in_a_namespace_labelled_production_in_the_same_file() -> None:
    _, report = check_json("-f", RENDERED)
    assert ("deny-nodeport-in-production", "deny") in verdicts(report)["Service/shop-admin"]


def test_ingress_without_tls_in_production_is_denied() -> None:
    _, report = check_json("-f", RENDERED)
    assert ("require-ingress-tls-in-production", "deny") in verdicts(report)["Ingress/shop"]


def test_other_kinds_are_skipped_and_counted_in_the_summary() -> None:
    _, report = check_json("-f", RENDERED)
    assert report["summary"]["skipped"] == {"ConfigMap": 1}
    assert report["summary"]["objects"] == 5
    text = run("check", "--policies", POLICIES, "-f", RENDERED)
    assert "1 skipped (ConfigMap 1)" in text.stdout


def test_mutations_are_reported_as_would_patch() -> None:
    _, report = check_json("-f", RENDERED)
    assert ("internal-loadbalancer", "patch") in verdicts(report)["Service/shop-api"]
    # shop-web already carries the internal annotation: nothing to add.
    assert ("internal-loadbalancer", "patch") not in verdicts(report)["Service/shop-web"]
    text = run("check", "--policies", POLICIES, "-f", RENDERED)
    assert "would patch" in text.stdout


def test_manifests_are_read_from_stdin() -> None:
    code, report = check_json("-f", "-", stdin=Path(RENDERED).read_text())
    assert code == 1
    shop_admin = next(r for r in report["results"] if r["resource"]["name"] == "shop-admin")
    assert shop_admin["location"] == {"file": "<stdin>", "document": 2, "line": 19}


def test_namespace_labels_flag_gives_a_namespace_its_labels() -> None:
    unknown = run("check", "--policies", POLICIES, "-f", "-", stdin=NODEPORT_IN_STAGING)
    assert unknown.exit_code == 2, "staging's labels are unknown: no verdict without them"
    assert "namespace staging (Service debug" in unknown.stderr
    code, report = check_json(
        "-f",
        "-",
        "--namespace-labels",
        "staging=environment=prod,team=a",
        stdin=NODEPORT_IN_STAGING,
    )
    assert code == 1
    assert ("deny-nodeport-in-production", "deny") in verdicts(report)["Service/debug"]


def test_objects_without_a_namespace_go_to_the_namespace_flag() -> None:
    manifest = NODEPORT_IN_STAGING.replace(", namespace: staging", "")
    code, report = check_json(
        "-f",
        "-",
        "-n",
        "shop",
        "--namespace-labels",
        "shop=environment=production",
        stdin=manifest,
    )
    assert code == 1
    assert report["results"][0]["resource"]["namespace"] == "shop"


def test_warn_and_audit_findings_do_not_fail_the_check() -> None:
    ingress_without_class = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: docs, namespace: dev}
spec:
  rules: [{host: docs.example.com}]
---
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: dev}
spec:
  type: LoadBalancer
  ports: [{port: 443}]
"""
    code, report = check_json("-f", "-", "--namespace-labels", "dev=",
                              stdin=ingress_without_class)
    assert code == 0
    assert report["summary"]["findings"]["warn"] == 1
    assert report["summary"]["findings"]["audit"] == 1
    assert report["summary"]["failed"] is False


def test_a_folder_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "chart" / "templates" / "svc.yaml").write_text(NODEPORT_IN_STAGING)
    (tmp_path / "chart" / "README.txt").write_text("not a manifest")
    code, report = check_json("-f", str(tmp_path), "--assume-unlabelled")
    assert code == 0
    assert report["summary"]["objects"] == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("apiVersion: v1\nkind: Service\nmetadata: {name: a\n", "bad.yaml:4: YAML syntax error"),
        ("- just\n- a list\n", "bad.yaml:1: document 0 is a list, not a Kubernetes object"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "bad.yaml:1: object has no kind"),
        ("apiVersion: v1\nkind: Service\nspec: {}\n", "bad.yaml:1: Service has no metadata.name"),
    ],
)
def test_a_bad_file_is_named_with_the_reason_and_exit_2(
    tmp_path: Path, content: str, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = run("check", "--policies", POLICIES, "-f", str(bad))
    assert result.exit_code == 2
    assert expected in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_user_error() -> None:
    result = run("check", "--policies", POLICIES, "-f", "nope/missing.yaml")
    assert result.exit_code == 2
    assert "nope/missing.yaml: no such file or folder" in result.stderr


def test_without_policies_flag_or_folder_check_uses_the_packaged_defaults_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check", "-f", RENDERED, "-o", "json")
    assert "using the packaged default policies" in result.stderr
    report = json.loads(result.stdout)
    applied = {f["policy"] for r in report["results"] for f in r["findings"]}
    assert {"deny-nodeport-in-production", "limit-loadbalancers-per-namespace"} <= applied
    assert result.exit_code == 1, "the default policies deny the chart's NodePort"


def test_a_malformed_namespace_labels_flag_is_a_user_error() -> None:
    result = run("check", "--policies", POLICIES, "-f", RENDERED, "--namespace-labels", "prod")
    assert result.exit_code == 2
    assert "NAMESPACE=key=value" in result.stderr


def test_report_is_written_to_out_file(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    result = run("check", "--policies", POLICIES, "-f", RENDERED, "--out", str(out))
    assert result.exit_code == 1
    assert "shop-metrics" in out.read_text()


def test_fixture_chart_is_valid_kubernetes() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    import yaml

    text = (FIXTURES / "shop-rendered.yaml").read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert documents, "the rendered chart holds objects"
    for document in documents:
        kubernetes_validate.validate(document, "1.30", strict=True)


REPO = Path(__file__).parents[2]


@pytest.mark.skipif(not (REPO / "policies").is_dir(), reason="shipped policies not present")
def test_shipped_policies_in_dot_policies_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = run("check", "-f", RENDERED, "-o", "json")
    assert result.exit_code == 1
    denied = {
        (r["resource"]["name"], f["policy"])
        for r in json.loads(result.stdout)["results"]
        for f in r["findings"]
        if f["result"] == "deny"
    }
    assert ("shop-admin", "deny-nodeport-in-production") in denied
    assert ("shop-metrics", "limit-loadbalancers-per-namespace") in denied
    assert ("shop", "require-ingress-tls-in-production") in denied


LOADBALANCER = """\
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: team}
spec:
  type: LoadBalancer
  ports: [{port: 443}]
"""
SHIPPED = str(Path(__file__).parents[2] / "policies")


def _annotations_after_check(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = CliRunner().invoke(
        app, ["check", "-p", SHIPPED, "-o", "json", "-f", "-", "--namespace-labels", "team=",
              *args],
        input=LOADBALANCER, env=env, catch_exceptions=False,
    )
    (obj,) = json.loads(result.stdout)["results"]
    (patched,) = [f for f in obj["findings"] if f["result"] == "patch"]
    (operation,) = patched["patch"]
    assert operation["path"] == "/metadata/annotations"
    return operation["value"]


def test_the_internal_lb_flavour_flag_and_its_environment_variable_reach_check() -> None:
    assert _annotations_after_check() == {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"
    }
    assert _annotations_after_check("--internal-lb-flavour", "gcp") == {
        "networking.gke.io/load-balancer-type": "Internal"
    }
    assert _annotations_after_check(env={"EDGEWARDEN_INTERNAL_LB_FLAVOUR": "azure"}) == {
        "service.beta.kubernetes.io/azure-load-balancer-internal": "true"
    }


def test_an_unknown_flavour_is_refused_with_exit_2() -> None:
    result = run("check", "-p", SHIPPED, "-f", "-", "--internal-lb-flavour", "oracle",
                 stdin=LOADBALANCER)
    assert result.exit_code == 2
    assert "'oracle' is not one of aws" in result.output


def test_repeated_policies_options_load_every_path(tmp_path: Path) -> None:
    # -p A -p B means both, not only B.
    nodeport = Path(SHIPPED) / "deny-nodeport-in-production.yaml"
    external = Path(SHIPPED) / "deny-external-ips.yaml"
    manifest = (
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {environment: prod}}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: debug, namespace: shop}\n"
        "spec: {type: NodePort, externalIPs: [10.0.0.1], ports: [{port: 80}]}\n"
    )
    result = run("check", "-p", str(nodeport), "-p", str(external), "-o", "json", "-f", "-",
                 stdin=manifest)
    assert result.exit_code == 1
    (obj,) = json.loads(result.stdout)["results"]
    denied = {f["policy"] for f in obj["findings"] if f["result"] == "deny"}
    assert denied == {"deny-nodeport-in-production", "deny-external-ips"}
