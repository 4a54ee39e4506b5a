"""Where ``audit``, ``report`` and ``quota`` read a cluster from: a YAML dump or the live API.

A ``--cluster-state`` file is read with the manifest reader, so findings point at its lines.
The live cluster is listed once (``webhook.offline.live``). Either way the result is a list
of objects, judged by the same code.

PolicyExceptions come from ``--exceptions`` files and from PolicyException objects among
the objects read (a cluster dump, a live cluster, a rendered chart): the same exceptions
admission would honour there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from webhook.errors import ClusterStateError, EdgewardenError, PolicyLoadError, PolicyProblem
from webhook.offline.folders import load_manifests
from webhook.offline.manifests import Manifest
from webhook.offline.progress import NO_PROGRESS, Progress
from webhook.policy.load.documents import exception_from_object, load_exceptions
from webhook.policy.load.loader import load_policies
from webhook.policy.load.schema import API_VERSION
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet, PolicyException
from webhook.policy.model.kinds import SHORT_NAMES, KindRef
from webhook.policy.model.policy import PolicySet

EXCEPTION_KIND = "PolicyException"


def resolve_policies(
    paths: Sequence[Path], *, internal_lb_flavour: str | None = None
) -> PolicySet:
    """The policy set of ``paths`` (the CLI decides the default: webhook.cli.policy_source)."""
    if not paths:
        raise PolicyLoadError(
            [PolicyProblem("", None, "--policies", "no policy file or folder given")]
        )
    return load_policies(*paths, internal_lb_flavour=internal_lb_flavour)


# What the exposure report shows whatever the policies match.
EXPOSURE_KINDS = tuple(SHORT_NAMES.values())


def cluster_objects(
    cluster_state: Path | None,
    progress: Progress = NO_PROGRESS,
    kinds: Iterable[KindRef] = EXPOSURE_KINDS,
) -> list[Manifest]:
    """The objects of ``cluster_state``, or the live cluster's Namespaces and objects of
    ``kinds`` (what the policies match: ``PolicySet.kinds()``)."""
    if cluster_state is not None:
        try:
            return load_manifests([cluster_state], progress=progress)
        except EdgewardenError as error:
            raise ClusterStateError(f"cluster state: {error}") from None
    return live_objects(progress=progress, kinds=kinds)


def live_objects(
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: Progress = NO_PROGRESS,
    kinds: Iterable[KindRef] = EXPOSURE_KINDS,
) -> list[Manifest]:
    """A snapshot of the live cluster; imported lazily so offline use never needs it."""
    from webhook.cluster.connection import api_client_from_environment
    from webhook.offline.live import snapshot

    # audit, report and quota have no --dev: a dump is their way to run without a cluster.
    api_client = api_client_from_environment(
        kubeconfig, context,
        offline="--cluster-state FILE (e.g. from `kubectl get ns,svc,ing -A -o yaml`)",
    )
    try:
        return [Manifest(obj, None) for obj in snapshot(api_client, progress, kinds)]
    finally:
        api_client.close()


def split_exceptions(
    objects: Sequence[Manifest], paths: Sequence[Path] | None = None
) -> tuple[ExceptionSet, list[Manifest]]:
    """The exceptions of ``--exceptions`` files and of PolicyException objects among
    ``objects``, and the other objects. A malformed one is an error (exit 2) naming it."""
    found: list[PolicyException] = list(load_exceptions(*paths)) if paths else []
    problems: list[PolicyProblem] = []
    rest: list[Manifest] = []
    for manifest in objects:
        if manifest.kind != EXCEPTION_KIND or manifest.obj.get("apiVersion") != API_VERSION:
            rest.append(manifest)
            continue
        try:
            found.append(exception_from_object(manifest.obj))
        except PolicyLoadError as error:
            where = str(manifest.location) if manifest.location is not None else None
            problems += [p if where is None else PolicyProblem(where, None, p.field, p.message)
                         for p in error.problems]
    if problems:
        raise PolicyLoadError(problems)
    return (ExceptionSet(found) if found else NO_EXCEPTIONS), rest
