"""Kubernetes' format library: ``format.dns1123Label()`` (and the other named formats) and
``format.named(name)``, whose ``validate(s)`` is ``optional.none()`` for a valid string and
the list of what is wrong otherwise, in apimachinery's words. A format is carried as its
name."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload
from webhook.policy.cel.library.urls import parse_request_uri
from webhook.policy.cel.runtime.values import NONE, Optional

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + "(\\." + _LABEL + ")*"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_KEY = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE = "(" + _KEY + ")?"
_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                  "characters or '-', and must start and end with an alphanumeric character")
_SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character")
_DNS1035_MESSAGE = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                    "'-', start with an alphabetic character, and end with an alphanumeric "
                    "character")
_KEY_MESSAGE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character")
_VALUE_MESSAGE = ("a valid label must be an empty string or consist of alphanumeric "
                  "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                  "character")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 characters")
    if not _matches(_LABEL, value):
        if _matches(_SUBDOMAIN, value):
            errors.append("must not contain dots")
        else:
            errors.append(_regex_error(_LABEL_MESSAGE, _LABEL, "my-name", "123-abc"))
    return errors


def dns1123_subdomain(value: str, *, unit: str = "characters") -> list[str]:
    errors = []
    if len(value.encode()) > 253:
        errors.append(f"must be no more than 253 {unit}")
    if not _matches(_SUBDOMAIN, value):
        errors.append(_regex_error(_SUBDOMAIN_MESSAGE, _SUBDOMAIN, "example.com"))
    return errors


def dns1035_label(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 characters")
    if not _matches(_DNS1035, value):
        errors.append(_regex_error(_DNS1035_MESSAGE, _DNS1035, "my-name", "abc-123"))
    return errors


def qualified_name(value: str) -> list[str]:
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["a valid label key " + _regex_error(_KEY_MESSAGE, _KEY, "MyName", "my.name",
                                                     "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain(prefix, unit="bytes"))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _matches(_KEY, name):
        errors.append("name part " + _regex_error(_KEY_MESSAGE, _KEY, "MyName", "my.name",
                                                  "123-abc"))
    return errors


def label_value(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not _matches(_VALUE, value):
        errors.append(_regex_error(_VALUE_MESSAGE, _VALUE, "MyValue", "my_value", "12345"))
    return errors


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """A name used as a generateName prefix: a trailing dash is allowed (apimachinery
    masks it as it does: the last two characters become one letter)."""
    def masked(value: str) -> list[str]:
        if len(value) > 1 and value.endswith("-"):
            value = value[:-2] + "a"
        return check(value)
    return masked


def _uri(value: str) -> list[str]:
    """Go's ``url.ParseRequestURI`` error, which quotes the string: the result is a value the
    policy computes (as in Kubernetes), not an error edgewarden reports."""
    try:
        parse_request_uri(value, "validate")
    except LibraryError as error:
        reason = str(error).rpartition(": ")[2]
        return [f"parse {json.dumps(value)}: {reason}"]
    return []


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|"
                     r"[A-Za-z0-9+/]{4})")


def _byte(value: str) -> list[str]:
    """strfmt's ``byte``: standard base64 with padding, at least one group."""
    return [] if _BASE64.fullmatch(value) else ["invalid base64"]


def _date(value: str) -> list[str]:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return ["invalid date"]
    return [] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else ["invalid date"]


def _datetime(value: str) -> list[str]:
    pattern = (r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
               r"([Zz]|[+-]\d{2}:?\d{2})?")
    if not re.fullmatch(pattern, value):
        return ["invalid datetime"]
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return ["invalid datetime"]
    return []


FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": dns1123_label,
    "dns1123Subdomain": dns1123_subdomain,
    "dns1035Label": dns1035_label,
    "qualifiedName": qualified_name,
    "dns1123LabelPrefix": _prefix(dns1123_label),
    "dns1123SubdomainPrefix": _prefix(dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(dns1035_label),
    "labelValue": label_value,
    "uri": _uri,
    "uuid": lambda value: [] if _UUID.match(value) else ["does not match the UUID format"],
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def named(name: Any) -> Optional:
    if not isinstance(name, str):
        raise no_such_overload("format.named")
    return Optional.of(name) if name in FORMATS else NONE


def validate(form: Any, value: Any) -> Optional:
    if not isinstance(form, str) or form not in FORMATS or not isinstance(value, str):
        raise no_such_overload("validate")
    errors = FORMATS[form](value)
    return Optional.of(errors) if errors else NONE


def _constant(name: str) -> Callable[[], str]:
    return lambda: name


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f"format.{name}": _constant(name) for name in FORMATS},
    "format.named": named,
    "validate": validate,
}
