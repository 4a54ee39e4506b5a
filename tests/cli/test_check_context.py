"""``check`` never passes for lack of context: each trap a user fell into, run through the
command itself. Before these, every one of them said "Nothing Enforce would deny"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run
from webhook.cli.policy_source import packaged_policies

REPO = Path(__file__).resolve().parents[2]
POLICIES = str(REPO / "policies")
NODEPORT = str(REPO / "policies" / "fixtures" / "services" / "nodeport.yaml")

PAYMENTS_IN_PRODUCTION = """\
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {environment: production}}
"""



def denied(result: Result) -> list[tuple[str, str]]:
    report = json.loads(result.stdout)
    assert report["results"], "something was judged"
    return [(r["resource"]["name"], f["policy"]) for r in report["results"]
            for f in r["findings"] if f["result"] == "deny"]


# --- a namespace the input never defines -------------------------------------------------


def test_a_nodeport_in_a_namespace_nothing_defines_is_refused_not_passed() -> None:
    result = run("check", "-p", POLICIES, "-f", NODEPORT, "-n", "payments")
    assert result.exit_code == 2, result.output
    assert result.stdout == "", "no report that could be read as a pass"
    message = result.stderr
    assert "namespace payments (Service web, " in message and "nodeport.yaml:1)" in message
    for way_out in ("Namespace manifest", "--namespace-labels payments=KEY=VALUE",
                    "--cluster-state FILE", "--assume-unlabelled"):
        assert way_out in message
    assert "Traceback" not in result.output


def test_every_undefined_namespace_is_named_in_one_message() -> None:
    two = ("apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: payments}\n---\n"
           "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: staging}\n---\n"
           "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: staging}\n")
    result = run("check", "-p", POLICIES, "-f", "-", stdin=two)
    assert result.exit_code == 2
    assert "namespaces payments (Service a, <stdin>:1), staging (Service b, <stdin>:5, and 1 " \
           "more) are not defined in the input" in result.stderr


@pytest.mark.parametrize(
    ("context", "expected_exit"),
    [
        (("--namespace-labels", "payments=environment=production"), 1),
        (("--namespace-labels", "payments="), 0),  # known to have no labels
        (("--assume-unlabelled",), 0),
    ],
    ids=["labels-production", "labels-none", "assume-unlabelled"],
)
def test_a_flag_that_says_what_the_namespace_is_lets_check_judge(
    context: tuple[str, ...], expected_exit: int
) -> None:
    result = run("check", "-p", POLICIES, "-f", NODEPORT, "-n", "payments", "-o", "json",
                 *context)
    assert result.exit_code == expected_exit, result.output


def test_a_cluster_state_defines_its_namespaces_and_only_those(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(PAYMENTS_IN_PRODUCTION)
    result = run("check", "-p", POLICIES, "-f", NODEPORT, "-n", "payments",
                 "--cluster-state", str(state), "-o", "json")
    assert result.exit_code == 1
    assert denied(result) == [("web", "deny-nodeport-in-production")]
    elsewhere = run("check", "-p", POLICIES, "-f", NODEPORT, "-n", "staging",
                    "--cluster-state", str(state))
    assert elsewhere.exit_code == 2
    assert "not defined in the input nor in the cluster state" in elsewhere.stderr


def test_a_namespace_in_the_input_needs_no_flag() -> None:
    service = Path(NODEPORT).read_text()
    result = run("check", "-p", POLICIES, "-f", "-", "-n", "payments", "-o", "json",
                 stdin=PAYMENTS_IN_PRODUCTION + "---\n" + service)
    assert result.exit_code == 1
    assert denied(result) == [("web", "deny-nodeport-in-production")]


# --- empty input --------------------------------------------------------------------------


@pytest.mark.parametrize("stdin", ["", "\n", "---\n# helm: nothing rendered\n---\n"],
                         ids=["empty", "newline", "comments"])
def test_a_failed_render_piped_in_is_an_error(stdin: str) -> None:
    """`helm template … | edgewarden check -f -` where helm printed nothing."""
    result = run("check", "-p", POLICIES, "-f", "-", stdin=stdin)
    assert result.exit_code == 2
    assert "no Kubernetes object in the input (standard input)" in result.stderr


def test_an_empty_file_and_a_folder_of_nothing_judgeable_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "rendered.yaml"
    empty.write_text("")
    assert run("check", "-p", POLICIES, "-f", str(empty)).exit_code == 2
    chart = tmp_path / "repo" / "chart"
    chart.mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    result = run("check", "-p", POLICIES, "-f", str(tmp_path / "repo"))
    assert result.exit_code == 2
    assert "a Helm chart" in result.stderr, "the note says why nothing was read"
    assert "no Kubernetes object in the input" in result.stderr


def test_input_with_only_other_kinds_is_not_empty() -> None:
    """A chart that renders no Service or Ingress is fine: nothing here is a governed kind."""
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
    result = run("check", "-p", POLICIES, "-f", "-", stdin=config)
    assert result.exit_code == 0
    assert "1 skipped (ConfigMap 1)" in result.stdout


# --- a ./policies of one's own ------------------------------------------------------------

OWN_POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: require-team-label}
spec:
  mode: Warn
  match: {kinds: [Service]}
  validations:
    - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
      message: every Service names its team
"""


def test_a_custom_policies_folder_says_the_defaults_are_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "team.yaml").write_text(OWN_POLICY)
    monkeypatch.chdir(tmp_path)
    result = run("check", "-f", NODEPORT, "-n", "payments",
                 "--namespace-labels", "payments=environment=production")
    assert result.exit_code == 0, "only the team-label policy ran"
    assert "note: using ./policies; " in result.stderr
    assert "packaged default policies are not loaded" in result.stderr
    assert "--with-defaults adds them" in result.stderr


def test_with_defaults_adds_the_packaged_policies_beside_ones_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "team.yaml").write_text(OWN_POLICY)
    monkeypatch.chdir(tmp_path)
    result = run("check", "-f", NODEPORT, "-n", "payments", "-o", "json", "--with-defaults",
                 "--namespace-labels", "payments=environment=production")
    assert result.exit_code == 1
    assert denied(result) == [("web", "deny-nodeport-in-production")]
    report = json.loads(result.stdout)
    policies = {f["policy"] for r in report["results"] for f in r["findings"]}
    assert "require-team-label" in policies
    assert "not loaded" not in result.stderr


def test_with_defaults_keeps_ones_own_version_of_a_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default adapted under its own name replaces the packaged one (no duplicate)."""
    (tmp_path / "policies").mkdir()
    softened = (packaged_policies() / "deny-nodeport-in-production.yaml").read_text()
    (tmp_path / "policies" / "nodeport.yaml").write_text(
        softened.replace("mode: Enforce", "mode: Warn"))
    monkeypatch.chdir(tmp_path)
    result = run("check", "-f", NODEPORT, "-n", "payments", "-o", "json", "--with-defaults",
                 "--namespace-labels", "payments=environment=production")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (web,) = report["results"]
    assert ("deny-nodeport-in-production", "warn") in [
        (f["policy"], f["result"]) for f in web["findings"]]


def test_a_policies_folder_holding_every_default_needs_no_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("policies", "export", str(tmp_path / "policies")).exit_code == 0
    (tmp_path / "policies" / "team.yaml").write_text(OWN_POLICY)
    monkeypatch.chdir(tmp_path)
    result = run("check", "-f", NODEPORT, "-n", "payments", "--assume-unlabelled")
    assert result.exit_code == 0
    assert "not loaded" not in result.stderr


# --- every Ingress apiVersion Kubernetes ever served --------------------------------------

INGRESS_V1 = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: payments}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
"""
INGRESS_V1BETA1 = """\
apiVersion: {version}
kind: Ingress
metadata: {{name: shop, namespace: payments}}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            backend: {{serviceName: web, servicePort: 80}}
"""
VERSIONS = {
    "networking.k8s.io/v1": INGRESS_V1,
    "networking.k8s.io/v1beta1": INGRESS_V1BETA1.format(version="networking.k8s.io/v1beta1"),
    "extensions/v1beta1": INGRESS_V1BETA1.format(version="extensions/v1beta1"),
}


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_an_ingress_without_tls_in_production_is_denied_in_every_version(version: str) -> None:
    result = run("check", "-p", POLICIES, "-o", "json", "-f", "-",
                 stdin=PAYMENTS_IN_PRODUCTION + "---\n" + VERSIONS[version])
    assert result.exit_code == 1, result.output
    assert denied(result) == [("shop", "require-ingress-tls-in-production")]
    if version != "networking.k8s.io/v1":
        assert f"1 Ingress object(s) of {version} judged as networking.k8s.io/v1" in result.stderr


BACKEND_PORT_POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: backends-on-port-80}
spec:
  mode: Enforce
  match: {kinds: [Ingress]}
  validations:
    - expression: >-
        object.spec.rules.all(r, !has(r.http) || r.http.paths.all(p,
          p.pathType == 'ImplementationSpecific' || p.pathType == 'Prefix') &&
          r.http.paths.all(p, p.backend.service.name == 'web' &&
          p.backend.service.port.number == 80))
      message: every backend is the web Service on port 80
"""


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize(("port", "expected_exit"), [("80", 0), ("8080", 1)])
def test_old_backends_are_read_as_the_v1_fields_policies_name(
    tmp_path: Path, version: str, port: str, expected_exit: int
) -> None:
    """serviceName/servicePort become service.name/service.port.number, and a path without
    pathType gets v1beta1's default, as the API server converts them."""
    policy = tmp_path / "backends.yaml"
    policy.write_text(BACKEND_PORT_POLICY)
    ingress = VERSIONS[version].replace("80}", f"{port}}}")
    result = run("check", "-p", str(policy), "-f", "-", "--namespace-labels", "payments=",
                 "-o", "json", stdin=ingress)
    assert result.exit_code == expected_exit, result.output
    assert json.loads(result.stdout)["summary"]["objects"] == 1


def test_a_governed_kind_in_a_group_the_policies_do_not_name_is_said_on_stderr() -> None:
    other = ("apiVersion: v1\nkind: Namespace\nmetadata: {name: payments}\n---\n"
             "apiVersion: traefik.example.com/v1\nkind: Ingress\n"
             "metadata: {name: shop, namespace: payments}\n")
    result = run("check", "-p", POLICIES, "-f", "-", stdin=other)
    assert result.exit_code == 0
    assert ("note: Ingress shop (<stdin>:5) not judged: its apiVersion traefik.example.com/v1 "
            "is not one the policies govern (networking.k8s.io/v1)") in result.stderr
