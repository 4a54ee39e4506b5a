"""deploy/components/client-ca: the production overlay with `serve --client-ca`, the CA
mounted from a Secret, and the probes on their own port (so the webhook port refuses a
caller without a certificate at the handshake)."""

from __future__ import annotations

from pathlib import Path

from .checks import parse_with_the_real_cli
from .conftest import REPO, _build, one


def test_the_component_makes_the_webhook_port_ask_for_the_api_servers_certificate(
    tmp_path: Path,
) -> None:
    overlay = tmp_path / "with-client-ca"
    overlay.mkdir()
    deploy = Path("../" * len(overlay.parts[1:])) / REPO.relative_to("/") / "deploy"
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{deploy / 'overlays' / 'production'}]\n"
        f"components: [{deploy / 'components' / 'client-ca'}]\n")
    deployment = one(list(_build(str(overlay))), "Deployment", "edgewarden")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    params = parse_with_the_real_cli(container["args"])

    assert params["client_ca"] == Path("/etc/edgewarden/client-ca/ca.crt")
    assert params["probe_port"], "the probes have their own port: the handshake refuses"
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "client-ca"]
    assert mount == {"name": "client-ca", "mountPath": "/etc/edgewarden/client-ca",
                     "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "client-ca"]
    assert volume["secret"] == {"secretName": "edgewarden-client-ca"}
    probes = [container[p]["httpGet"] for p in ("readinessProbe", "livenessProbe")
              if p in container]
    assert probes, "the Deployment probes the pod"
    for probe in probes:
        assert probe.get("scheme", "HTTP") == "HTTP", "the kubelet presents no certificate"
