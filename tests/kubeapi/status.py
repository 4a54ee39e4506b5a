"""``Status`` bodies, the API server's answer for every failure, and the error that carries one."""

from __future__ import annotations

from typing import Any

from .resources import Resource, Route

SERVICE_ACCOUNT = "system:serviceaccount:edgewarden:edgewarden"


class ApiError(Exception):
    """A request the double refuses; the handler answers ``status`` with ``code``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.status = status(code, reason, message)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _qualified(resource: Resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def not_found(route: Route) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(route.resource)} "{route.name}" not found')


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource)} "{name}" already exists')


def conflict(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str, code: int = 410, reason: str = "Expired") -> dict[str, Any]:
    return status(code, reason, message)


def forbidden(verb: str, route: Route) -> ApiError:
    resource = route.resource
    scope = (
        f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    )
    subject = f'{_qualified(resource)} "{route.name}"' if route.name else _qualified(resource)
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
        f'"{resource.plural}" in API group "{resource.group}" {scope}',
    )
