"""Where ``audit``, ``report`` and ``quota`` read a cluster from: a YAML dump or the live API.

A ``--cluster-state`` file is read with the manifest reader, so findings point at its lines.
The live cluster is listed once (``webhook.audit.live``). Either way the result is a list
of objects, judged by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from webhook.audit.manifests import Manifest, load_manifests
from webhook.audit.progress import NO_PROGRESS, Progress
from webhook.errors import ClusterStateError, EdgewardenError, PolicyLoadError, PolicyProblem
from webhook.policy.loader import load_policies
from webhook.policy.model import PolicySet


def resolve_policies(
    paths: Sequence[Path], *, internal_lb_flavour: str | None = None
) -> PolicySet:
    """The policy set of ``paths`` (the CLI decides the default: webhook.cli.policy_source)."""
    if not paths:
        raise PolicyLoadError(
            [PolicyProblem("", None, "--policies", "no policy file or folder given")]
        )
    return load_policies(*paths, internal_lb_flavour=internal_lb_flavour)


def cluster_objects(
    cluster_state: Path | None, progress: Progress = NO_PROGRESS
) -> list[Manifest]:
    """The Namespaces, Services and Ingresses of ``cluster_state``, or of the live cluster."""
    if cluster_state is not None:
        try:
            return load_manifests([cluster_state], progress=progress)
        except EdgewardenError as error:
            raise ClusterStateError(f"cluster state: {error}") from None
    return live_objects(progress=progress)


def live_objects(
    kubeconfig: str | None = None, context: str | None = None, progress: Progress = NO_PROGRESS
) -> list[Manifest]:
    """A snapshot of the live cluster; imported lazily so offline use never needs it."""
    from webhook.audit.live import snapshot
    from webhook.cluster.connection import api_client_from_environment

    api_client = api_client_from_environment(kubeconfig, context)
    try:
        return [Manifest(obj, None) for obj in snapshot(api_client, progress)]
    finally:
        api_client.close()
