"""Connecting to the Kubernetes API the way every edgewarden command does.

The in-cluster service account when running in a pod, else the kubeconfig
(``--kubeconfig``/``$KUBECONFIG``/``~/.kube/config``). One place, so ``serve``, ``audit`` and
the certificate manager agree on it and on the message when neither works.
"""

from __future__ import annotations

import logging
import os

from kubernetes import client, config

from webhook.errors import ClusterStateError

log = logging.getLogger("edgewarden.cluster")

# The connection every module of this package takes; the packages above name it through
# here, so that only webhook/cluster/ imports the client.
ApiClient = client.ApiClient


# What a command without a cluster can use instead; `serve` offers both, others their own.
OFFLINE_HINT = "--cluster-state FILE (e.g. from `kubectl get ns,svc,ing -A -o yaml`) or --dev"


def api_client_from_environment(
    kubeconfig: str | None = None, context: str | None = None, *, offline: str = OFFLINE_HINT
) -> client.ApiClient:
    """An ApiClient for this environment; ClusterStateError says what to do when none works,
    naming ``offline``, the calling command's own ways to run without a cluster."""
    configuration = client.Configuration()
    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
            log.info("cluster: using the in-cluster service account")
            return client.ApiClient(configuration)
        except config.ConfigException as in_cluster_error:
            log.debug("not in a cluster: %s", in_cluster_error)
    try:
        config.load_kube_config(
            # Read $KUBECONFIG now: the client's own default is frozen when first imported.
            config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, TypeError, ValueError) as error:
        raise ClusterStateError(
            "cannot reach the Kubernetes API: not running in a cluster (no service account "
            f"token) and no usable kubeconfig ({error}). Set KUBECONFIG, or use {offline}."
        ) from None
    log.info("cluster: using kubeconfig at %s", configuration.host)
    return client.ApiClient(configuration)
