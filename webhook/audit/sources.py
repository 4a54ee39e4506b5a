"""Where ``audit``, ``report`` and ``quota`` read a cluster from: a YAML dump or the live API.

A ``--cluster-state`` file is read with the manifest reader, so findings point at its lines.
The live cluster is read through the watch cache (``webhook.cluster.kube``): start it, wait
for the first LIST of every kind, snapshot, stop. Either way the result is a list of
located objects, judged by the same code.
"""

from __future__ import annotations

from pathlib import Path

from webhook.audit.manifests import Location, Manifest, load_manifests
from webhook.errors import ClusterStateError, EdgewardenError, PolicyLoadError, PolicyProblem
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet

DEFAULT_POLICIES = Path("policies")
SYNC_TIMEOUT_SECONDS = 60.0
LIVE = Location("cluster")


def resolve_policies(path: Path | None) -> PolicySet:
    """``--policies`` or, without it, ./policies when it exists; PolicyLoadError otherwise."""
    if path is None:
        if not DEFAULT_POLICIES.exists():
            raise PolicyLoadError(
                [
                    PolicyProblem(
                        str(DEFAULT_POLICIES),
                        None,
                        "--policies",
                        "no ./policies folder here: pass --policies FILE|DIR",
                    )
                ]
            )
        path = DEFAULT_POLICIES
    return load_policies(path)


def cluster_objects(
    cluster_state: Path | None, *, timeout: float = SYNC_TIMEOUT_SECONDS
) -> list[Manifest]:
    """The Namespaces, Services and Ingresses of ``cluster_state``, or of the live cluster."""
    if cluster_state is not None:
        try:
            return load_manifests([cluster_state])
        except EdgewardenError as error:
            raise ClusterStateError(f"cluster state: {error}") from None
    return live_objects(timeout)


def live_objects(timeout: float) -> list[Manifest]:
    try:
        from webhook.cluster.kube import KubeCluster
    except ImportError as error:  # the kubernetes client missing, or an old build
        raise ClusterStateError(
            f"reading a live cluster is not available ({error}); use --cluster-state FILE"
        ) from None
    cluster = KubeCluster.from_environment()
    snapshot = getattr(cluster, "objects", None)
    if snapshot is None:
        raise ClusterStateError(
            "reading a live cluster is not available in this build (the watch cache cannot "
            "list its objects yet); dump the cluster with `kubectl get ns,svc,ing -A -o yaml "
            "> state.yaml` and pass --cluster-state state.yaml"
        )
    cluster.start()
    try:
        if not cluster.wait_synced(timeout=timeout):
            raise ClusterStateError(
                f"the cluster's Namespaces, Services and Ingresses were not listed within "
                f"{timeout:.0f}s; check connectivity and RBAC (list/watch on them)"
            )
        return [Manifest(obj, LIVE) for obj in snapshot()]
    finally:
        cluster.stop()
