"""The few Kubernetes API calls certificate management makes, behind a small protocol.

:class:`CertStore` is what :class:`webhook.certs.bootstrap.CertificateManager` needs;
:class:`KubernetesCertStore` implements it with the ``kubernetes`` client. Conflicts (a
create that finds the object, a write with a stale ``resourceVersion``) surface as
:class:`StoreConflict`: another replica wrote first, so the caller re-reads.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from webhook.errors import CertificateError

WebhookKind = Literal["validating", "mutating"]
MERGE_PATCH = "application/merge-patch+json"


class StoreConflict(Exception):
    """The object changed (or appeared) since it was read: another writer won."""


@dataclass
class StoredSecret:
    """A Secret as certificate management sees it: decoded data, metadata, version."""

    data: dict[str, bytes]
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    resource_version: str | None = None
    type: str = "kubernetes.io/tls"


class CertStore(Protocol):
    def read_secret(self, namespace: str, name: str) -> StoredSecret | None: ...

    def create_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret: ...

    def replace_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret:
        """Write ``secret`` only if it is still at ``secret.resource_version``."""
        ...

    def read_webhook_configuration(self, kind: WebhookKind, name: str) -> dict[str, Any] | None:
        """The configuration as the API serves it (camelCase keys), or None when absent."""
        ...

    def patch_webhook_configuration(
        self, kind: WebhookKind, name: str, patch: dict[str, Any]
    ) -> None:
        """A JSON merge patch; one carrying ``metadata.resourceVersion`` is conditional."""
        ...


class KubernetesCertStore:
    """:class:`CertStore` over ``CoreV1Api`` and ``AdmissionregistrationV1Api``."""

    def __init__(self, api_client: Any | None = None) -> None:
        from kubernetes import client

        self._client = api_client if api_client is not None else _default_api_client()
        self._core = client.CoreV1Api(self._client)
        self._admission = client.AdmissionregistrationV1Api(self._client)

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        try:
            secret = self._call(self._core.read_namespaced_secret, name, namespace)
        except _NotFound:
            return None
        return _from_api(self._client.sanitize_for_serialization(secret))

    def create_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret:
        body = _to_api(name, namespace, secret, with_version=False)
        created = self._call(self._core.create_namespaced_secret, namespace, body)
        return _from_api(self._client.sanitize_for_serialization(created))

    def replace_secret(self, namespace: str, name: str, secret: StoredSecret) -> StoredSecret:
        body = _to_api(name, namespace, secret, with_version=True)
        try:
            replaced = self._call(self._core.replace_namespaced_secret, name, namespace, body)
        except _NotFound:
            raise StoreConflict(f"Secret {namespace}/{name} was deleted meanwhile") from None
        return _from_api(self._client.sanitize_for_serialization(replaced))

    def read_webhook_configuration(self, kind: WebhookKind, name: str) -> dict[str, Any] | None:
        read = (
            self._admission.read_validating_webhook_configuration
            if kind == "validating"
            else self._admission.read_mutating_webhook_configuration
        )
        try:
            found = self._call(read, name)
        except _NotFound:
            return None
        result: dict[str, Any] = self._client.sanitize_for_serialization(found)
        return result

    def patch_webhook_configuration(
        self, kind: WebhookKind, name: str, patch: dict[str, Any]
    ) -> None:
        method = (
            self._admission.patch_validating_webhook_configuration
            if kind == "validating"
            else self._admission.patch_mutating_webhook_configuration
        )
        # The generated client would default to a JSON *Patch* content type for any body;
        # a merge patch is what carries the resourceVersion precondition.
        self._call(method, name, patch, _content_type=MERGE_PATCH)

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return method(*args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                raise _NotFound() from None
            if error.status == 409:
                raise StoreConflict(str(error.reason)) from None
            raise CertificateError(
                f"Kubernetes API refused {method.__name__}: {error.status} {error.reason}"
                f"{_status_message(error)}"
            ) from None
        except (HTTPError, OSError) as error:
            raise CertificateError(f"cannot reach the Kubernetes API: {error}") from None


class _NotFound(Exception):
    pass


def _default_api_client() -> Any:
    from webhook.cluster.connection import api_client_from_environment
    from webhook.errors import ClusterStateError

    try:
        return api_client_from_environment()
    except ClusterStateError as error:
        raise CertificateError(str(error)) from None


def _status_message(error: Any) -> str:
    import json

    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if message else ""


def _from_api(secret: dict[str, Any]) -> StoredSecret:
    metadata = secret.get("metadata") or {}
    return StoredSecret(
        data={k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()},
        annotations=dict(metadata.get("annotations") or {}),
        labels=dict(metadata.get("labels") or {}),
        resource_version=metadata.get("resourceVersion"),
        type=secret.get("type") or "Opaque",
    )


def _to_api(name: str, namespace: str, secret: StoredSecret, *, with_version: bool) -> Any:
    from kubernetes import client

    metadata = client.V1ObjectMeta(
        name=name,
        namespace=namespace,
        annotations=secret.annotations or None,
        labels=secret.labels or None,
        resource_version=secret.resource_version if with_version else None,
    )
    data: dict[str, bytes | str] = {
        k: base64.b64encode(v).decode("ascii") for k, v in secret.data.items()
    }
    return client.V1Secret(metadata=metadata, type=secret.type, data=data)
