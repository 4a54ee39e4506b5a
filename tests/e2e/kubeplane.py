"""The local control plane's pieces (tests/kube), imported once for the e2e package.

pytest puts tests/ on sys.path when it imports these test packages (tests/ itself is not
a package), so tests/kube is the top-level package ``kube``; should tests/ become a
package, it is ``..kube`` instead."""

from __future__ import annotations

try:
    from kube.binaries import cert_manager_crds, gateway_api_crds
    from kube.controlplane import ControlPlane, KubectlError
    from kube.fixtures import kube_control_plane
    from kube.net import free_port, listening
    from kube.processes import ManagedProcess
    from kube.wait import until
except ImportError:
    from ..kube.binaries import (  # type: ignore[no-redef]
        cert_manager_crds,
        gateway_api_crds,
    )
    from ..kube.controlplane import ControlPlane, KubectlError  # type: ignore[no-redef]
    from ..kube.fixtures import kube_control_plane  # type: ignore[no-redef]
    from ..kube.net import free_port, listening  # type: ignore[no-redef]
    from ..kube.processes import ManagedProcess  # type: ignore[no-redef]
    from ..kube.wait import until  # type: ignore[no-redef]

__all__ = ["ControlPlane", "KubectlError", "ManagedProcess", "cert_manager_crds", "free_port",
           "gateway_api_crds", "kube_control_plane", "listening", "until"]
