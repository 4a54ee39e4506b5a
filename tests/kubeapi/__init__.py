"""One Kubernetes API double for every test: list and watch, CRUD, faults, recorded requests.

Real HTTP(S) on 127.0.0.1 and a free port, reached by the ``kubernetes`` client through a
kubeconfig (``tests.support.kubeconfig``). The root conftest serves one per test as the
``kube_api`` fixture. See :mod:`.api` for what a test can do with it and :mod:`.resources`
for the kinds it serves and how to add one.
"""

from .api import KubeApi
from .recording import Request
from .resources import (
    CLUSTER_POLICY_REPORTS,
    CONFIGMAPS,
    DEFAULT_RESOURCES,
    EDGEWARDEN_RESOURCES,
    INGRESSES,
    LEASES,
    MUTATING_WEBHOOKS,
    NAMESPACES,
    POLICIES,
    POLICY_EXCEPTIONS,
    POLICY_REPORTS,
    SECRETS,
    SERVICES,
    VALIDATING_WEBHOOKS,
    Resource,
)
from .status import SERVICE_ACCOUNT

__all__ = [
    "CLUSTER_POLICY_REPORTS",
    "CONFIGMAPS",
    "DEFAULT_RESOURCES",
    "EDGEWARDEN_RESOURCES",
    "INGRESSES",
    "LEASES",
    "MUTATING_WEBHOOKS",
    "NAMESPACES",
    "POLICIES",
    "POLICY_EXCEPTIONS",
    "POLICY_REPORTS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNT",
    "VALIDATING_WEBHOOKS",
    "KubeApi",
    "Request",
    "Resource",
]
