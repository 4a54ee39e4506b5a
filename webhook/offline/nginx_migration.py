"""The ingress-nginx annotations on Ingresses, and what each becomes in Gateway API: the
page's migration view (the community ingress-nginx controller was retired in March 2026).

Each annotation is ``carries`` (a core or extended Gateway API field does the same),
``partly`` (a field covers the common case, or only the experimental channel has it) or
``none`` (no Gateway API equivalent: an implementation's own policy, or a redesign).
Annotations not in the table are reported as ``none`` with a pointer to the implementation.
The table cites Gateway API v1.3 field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "nginx.ingress.kubernetes.io/"
CARRIES, PARTLY, NONE = "carries", "partly", "none"

# annotation (without the prefix) -> (how it carries over, what to use in Gateway API)
EQUIVALENTS: dict[str, tuple[str, str]] = {
    "rewrite-target": (PARTLY, "HTTPRoute URLRewrite filter (path ReplacePrefixMatch or "
                       "ReplaceFullPath); regular-expression capture groups have no equivalent"),
    "use-regex": (PARTLY, "HTTPRoute path match type RegularExpression "
                  "(implementation-specific support)"),
    "ssl-redirect": (CARRIES, "an HTTP listener whose HTTPRoute has only a RequestRedirect "
                     "filter with scheme: https"),
    "force-ssl-redirect": (CARRIES, "an HTTP listener whose HTTPRoute has only a "
                           "RequestRedirect filter with scheme: https"),
    "permanent-redirect": (CARRIES, "HTTPRoute RequestRedirect filter, statusCode 301"),
    "permanent-redirect-code": (CARRIES, "RequestRedirect filter statusCode"),
    "temporal-redirect": (CARRIES, "HTTPRoute RequestRedirect filter, statusCode 302"),
    "app-root": (CARRIES, "a rule matching path / exactly with a RequestRedirect filter "
                 "(path ReplaceFullPath)"),
    "upstream-vhost": (CARRIES, "HTTPRoute URLRewrite filter hostname"),
    "x-forwarded-prefix": (CARRIES, "HTTPRoute RequestHeaderModifier filter"),
    "server-alias": (CARRIES, "more entries in HTTPRoute spec.hostnames"),
    "mirror-target": (CARRIES, "HTTPRoute RequestMirror filter"),
    "mirror-host": (CARRIES, "HTTPRoute RequestMirror filter"),
    "canary": (CARRIES, "weighted backendRefs in one HTTPRoute rule"),
    "canary-weight": (CARRIES, "backendRefs weight"),
    "canary-weight-total": (CARRIES, "backendRefs weight (relative weights)"),
    "canary-by-header": (CARRIES, "an HTTPRoute rule matching the header"),
    "canary-by-header-value": (CARRIES, "an HTTPRoute rule matching the header value"),
    "canary-by-header-pattern": (CARRIES, "an HTTPRoute header match of type "
                                 "RegularExpression"),
    "canary-by-cookie": (PARTLY, "an HTTPRoute header match on Cookie (no cookie match type)"),
    "backend-protocol": (PARTLY, "GRPC: a GRPCRoute; HTTPS: a BackendTLSPolicy; others "
                         "(FCGI, AJP) have no equivalent"),
    "ssl-passthrough": (CARRIES, "a TLS listener with tls.mode Passthrough and a TLSRoute"),
    "enable-cors": (PARTLY, "HTTPRoute CORS filter (experimental channel)"),
    "cors-allow-origin": (PARTLY, "HTTPRoute CORS filter allowOrigins (experimental channel)"),
    "cors-allow-methods": (PARTLY, "HTTPRoute CORS filter allowMethods (experimental channel)"),
    "cors-allow-headers": (PARTLY, "HTTPRoute CORS filter allowHeaders (experimental channel)"),
    "cors-allow-credentials": (PARTLY, "HTTPRoute CORS filter allowCredentials "
                               "(experimental channel)"),
    "cors-expose-headers": (PARTLY, "HTTPRoute CORS filter exposeHeaders (experimental)"),
    "cors-max-age": (PARTLY, "HTTPRoute CORS filter maxAge (experimental channel)"),
    "proxy-read-timeout": (PARTLY, "HTTPRoute rule timeouts.backendRequest (one timeout for "
                           "the whole backend request, not per read)"),
    "proxy-send-timeout": (PARTLY, "HTTPRoute rule timeouts.backendRequest"),
    "proxy-connect-timeout": (NONE, "no connect timeout in Gateway API: the implementation's "
                              "own policy"),
    "affinity": (PARTLY, "HTTPRoute rule sessionPersistence (experimental channel)"),
    "session-cookie-name": (PARTLY, "sessionPersistence sessionName (experimental channel)"),
    "session-cookie-max-age": (PARTLY, "sessionPersistence absoluteTimeout (experimental)"),
    "auth-tls-secret": (PARTLY, "Gateway spec.tls.frontend validation of client certificates "
                        "(experimental channel)"),
    "auth-tls-verify-client": (PARTLY, "Gateway spec.tls.frontend validation "
                               "(experimental channel)"),
    "auth-tls-match-cn": (NONE, "no client-certificate CN match in Gateway API"),
    "auth-url": (NONE, "no core external authentication (GEP-1494 is experimental): the "
                 "implementation's own policy"),
    "auth-signin": (NONE, "no equivalent: the implementation's own external-auth policy"),
    "auth-method": (NONE, "no equivalent: the implementation's own external-auth policy"),
    "auth-type": (NONE, "no basic/digest authentication in Gateway API"),
    "auth-secret": (NONE, "no basic/digest authentication in Gateway API"),
    "whitelist-source-range": (NONE, "no client IP allowlist in Gateway API: the "
                               "implementation's policy, or loadBalancerSourceRanges on the "
                               "Gateway's Service"),
    "allowlist-source-range": (NONE, "no client IP allowlist in Gateway API: the "
                               "implementation's policy"),
    "denylist-source-range": (NONE, "no client IP denylist in Gateway API"),
    "limit-rps": (NONE, "no rate limiting in Gateway API: the implementation's policy"),
    "limit-rpm": (NONE, "no rate limiting in Gateway API: the implementation's policy"),
    "limit-connections": (NONE, "no connection limit in Gateway API"),
    "proxy-body-size": (NONE, "no request body limit in Gateway API: the implementation's "
                        "policy"),
    "proxy-buffering": (NONE, "no buffering settings in Gateway API"),
    "custom-http-errors": (NONE, "no custom error pages in Gateway API"),
    "default-backend": (NONE, "no per-route default backend: add a catch-all rule"),
    "configuration-snippet": (NONE, "raw nginx configuration has no equivalent (and is "
                              "denied by deny-ingress-nginx-snippets)"),
    "server-snippet": (NONE, "raw nginx configuration has no equivalent"),
    "auth-snippet": (NONE, "raw nginx configuration has no equivalent"),
    "stream-snippet": (NONE, "raw nginx configuration has no equivalent"),
    "modsecurity-snippet": (NONE, "no WAF in Gateway API: the implementation's policy"),
    "enable-modsecurity": (NONE, "no WAF in Gateway API: the implementation's policy"),
}
UNKNOWN = (NONE, "not in edgewarden's table: check your Gateway implementation's policies")


@dataclass(frozen=True, slots=True)
class MigrationNote:
    ingress: str  # namespace/name
    annotation: str  # the full key
    value: str
    carries: str  # carries | partly | none
    instead: str


def migration_notes(objects: Iterable[Mapping[str, Any]]) -> list[MigrationNote]:
    """Every ``nginx.ingress.kubernetes.io/*`` annotation on every Ingress, with what it
    becomes in Gateway API; sorted by Ingress, then annotation."""
    notes = []
    for obj in objects:
        if obj.get("kind") != "Ingress":
            continue
        metadata = obj.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        annotations = metadata.get("annotations")
        if not isinstance(annotations, Mapping):
            continue
        ingress = f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or ''}"
        for key, value in annotations.items():
            if not str(key).startswith(PREFIX):
                continue
            carries, instead = EQUIVALENTS.get(str(key)[len(PREFIX):], UNKNOWN)
            notes.append(MigrationNote(ingress, str(key), str(value), carries, instead))
    return sorted(notes, key=lambda n: (n.ingress, n.annotation))
