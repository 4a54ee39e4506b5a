"""Helpers every test folder shares: polling, races, kubeconfigs, object builders, reviews and
policies."""

from .concurrency import race
from .kubeconfig import api_client, use_kubeconfig, write_kubeconfig
from .objects import ingress, namespace, service
from .policies import policies_from_yaml
from .polling import TimedOut, eventually, eventually_async
from .reviews import patch_of

__all__ = [
    "TimedOut",
    "api_client",
    "eventually",
    "eventually_async",
    "ingress",
    "namespace",
    "patch_of",
    "policies_from_yaml",
    "race",
    "service",
    "use_kubeconfig",
    "write_kubeconfig",
]
