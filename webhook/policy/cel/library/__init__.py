"""Kubernetes' CEL libraries, as the API server offers them to ValidatingAdmissionPolicy
(k8s.io/apiserver/pkg/cel/library at the pinned 1.37): lists, regex, url, ip, cidr, quantity,
format, and the optional-type helpers the syntax rewrite calls. Each function is a Python
callback the Rust evaluator calls; ``FUNCTIONS`` maps the name CEL calls to it.

Values the API server models as their own types (an IP, a CIDR, a URL, a quantity, a
format) are strings here (the Rust binding holds no foreign values): an IP and a CIDR as the
API server prints them (``string(ip)`` is the same), a URL as written, a quantity as its
exact decimal (so ``==`` compares amounts, as Kubernetes' does), a format as its name. The
load-time type checker gives them their Kubernetes types, so a string never reaches an IP
method in a policy that validates. docs/native.md lists what differs and why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library import (
    comprehensions,
    formats,
    lists,
    net,
    optionals,
    quantity,
    regex,
    semver,
    strings_format,
    urls,
)
from webhook.policy.cel.library.errors import LibraryError

FUNCTIONS: dict[str, Callable[..., Any]] = {
    **lists.FUNCTIONS,
    **regex.FUNCTIONS,
    **net.FUNCTIONS,
    **urls.FUNCTIONS,
    **quantity.FUNCTIONS,
    **formats.FUNCTIONS,
    **optionals.FUNCTIONS,
    **comprehensions.FUNCTIONS,
    **strings_format.FUNCTIONS,
    **semver.FUNCTIONS,
}

__all__ = ["FUNCTIONS", "LibraryError"]
