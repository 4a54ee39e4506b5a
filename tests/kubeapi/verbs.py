"""What the API server does with get, list, create, update, patch and delete.

The concurrency rules are the real ones: every write bumps ``resourceVersion``; a create of
an existing object is 409 AlreadyExists; an update or a patch whose ``resourceVersion`` is
not the current one is 409 Conflict (an update without one is unconditional); a missing
object is 404 NotFound. Patches are JSON merge patches or JSON patches; the strategic and
apply patch types are answered 415.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .resources import Route
from .status import ApiError, already_exists, bad_request, conflict, not_found
from .store import Object, Store

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def get(store: Store, route: Route) -> Object:
    return _current(store, route)


def list_page(
    store: Store, route: Route, limit: int, start: int, label_selector: str = ""
) -> dict[str, Any]:
    """One page of a list, items without kind/apiVersion (as the real server sends them);
    ``label_selector`` takes equality terms (``a=b,c=d``), the kind edgewarden sends."""
    resource = route.resource
    with store.cond:
        items = [i for i in store.items(resource, route.namespace)
                 if _selected(i, label_selector)]
        revision = store.revision
    page = items[start : start + limit] if limit else items[start:]
    for item in page:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    metadata: dict[str, Any] = {"resourceVersion": str(revision)}
    if limit and start + limit < len(items):
        metadata["continue"] = str(start + limit)
    return {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": metadata,
        "items": page,
    }


def create(store: Store, route: Route, body: Any) -> Object:
    obj = _object_body(body)
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        raise ApiError(422, "Invalid", "metadata.name: Required value: name is required")
    obj = _in_namespace_of(route, obj)
    obj["metadata"].pop("resourceVersion", None)
    if route.resource.status:
        obj.pop("status", None)  # set only through /status, as the API server does
    with store.cond:
        if store.get(route.resource, (route.namespace or "", name)) is not None:
            raise already_exists(route.resource, name)
        return store.write(route.resource, "ADDED", obj)


def update(store: Store, route: Route, body: Any) -> Object:
    obj = _in_namespace_of(route, _object_body(body))
    if obj["metadata"].get("name") != route.name:
        raise bad_request("the name of the object does not match the name on the URL")
    with store.cond:
        current = _current(store, route)
        _check_version(route, current, obj["metadata"].get("resourceVersion"))
        return store.write(route.resource, "MODIFIED", _split_status(route, current, obj))


def patch(store: Store, route: Route, body: Any, content_type: str) -> Object:
    with store.cond:
        current = _current(store, route)
        if content_type == MERGE_PATCH:
            patched = merge_patch(current, body)
        elif content_type == JSON_PATCH:
            try:
                patched = jsonpatch.apply_patch(current, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise ApiError(422, "Invalid", f"the JSON patch does not apply: {error}") from None
        else:
            raise ApiError(
                415, "UnsupportedMediaType", f"the double speaks no {content_type or 'patch'}"
            )
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not an object")
        _check_version(route, current, (patched.get("metadata") or {}).get("resourceVersion"))
        return store.write(route.resource, "MODIFIED", _split_status(route, current, patched))


def delete(store: Store, route: Route, body: Any) -> Object:
    wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
    with store.cond:
        current = _current(store, route)
        _check_version(route, current, wanted)
        return store.write(route.resource, "DELETED", current)


def _split_status(route: Route, current: Object, new: Object) -> Object:
    """With the status subresource, a write to the object keeps its status, and a write to
    ``/status`` changes nothing but the status (what the API server does)."""
    if not route.resource.status:
        return new
    if route.subresource == "status":
        kept = copy.deepcopy(current)
        if "status" in new:
            kept["status"] = new["status"]
        else:
            kept.pop("status", None)
        return kept
    kept = copy.deepcopy(new)
    if "status" in current:
        kept["status"] = current["status"]
    else:
        kept.pop("status", None)
    return kept


def _selected(obj: Object, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _current(store: Store, route: Route) -> Object:
    found = store.get(route.resource, (route.namespace or "", route.name or ""))
    if found is None:
        raise not_found(route)
    return found


def _check_version(route: Route, current: Object, wanted: str | None) -> None:
    if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
        raise conflict(route.resource, route.name or "")


def _object_body(body: Any) -> Object:
    if not isinstance(body, dict):
        raise bad_request("the request body is not a JSON object")
    obj = copy.deepcopy(body)
    if not isinstance(obj.setdefault("metadata", {}), dict):
        raise bad_request("metadata is not an object")
    return obj


def _in_namespace_of(route: Route, obj: Object) -> Object:
    if not route.resource.namespaced:
        obj["metadata"].pop("namespace", None)
        return obj
    given = obj["metadata"].get("namespace")
    if given and given != route.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the "
            "request"
        )
    obj["metadata"]["namespace"] = route.namespace
    return obj
