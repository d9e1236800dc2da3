"""Stripe's form encoding, decoded, and the parameter checks Stripe answers with 400s.

stripe-python sends v1 parameters as `application/x-www-form-urlencoded` pairs: nested hashes as
`metadata[key]=v`, arrays as `expand[0]=a` (older clients and curl users write `expand[]=a`),
booleans as `true`/`false`, and leaves out parameters that are None. GET requests carry the same
encoding in the query string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from . import errors

Params = dict[str, Any]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode(encoded: str) -> Params:
    """Parse a form-encoded string into nested dicts and lists, as Stripe reads it."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise errors.parameter_invalid(key, f"Invalid parameter name: {key}")
        path = [match.group(1), *_PART.findall(match.group(2))]
        _assign(root, path, value, key)
    return _listify(root)


def _assign(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    # An empty bracket (`expand[]`) appends: it takes the next free index of its container.
    node = root
    for part in path[:-1]:
        child = node.setdefault(part or str(len(node)), {})
        if not isinstance(child, dict):
            raise errors.parameter_invalid(key, f"Invalid hash for {key}: it was also sent as a value")
        node = child
    last = path[-1] or str(len(node))
    if isinstance(node.get(last), dict):
        raise errors.parameter_invalid(key, f"Invalid value for {key}: it was also sent as a hash")
    node[last] = value


def _listify(node: Any) -> Any:
    # `a[0]=x&a[1]=y` and `a[]=x&a[]=y` both arrive as dicts with index keys; Stripe treats them as arrays.
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def required_str(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.parameter_missing(name)
    if not isinstance(value, str):
        raise errors.parameter_invalid(name, f"Invalid string: {name} must be a string")
    return value


def optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.parameter_invalid(name, f"Invalid string: {name} must be a string")
    return value


def integer(params: Mapping[str, Any], name: str, *, required: bool, minimum: int | None = None) -> int | None:
    """An integer parameter; Stripe refuses decimals and words with `parameter_invalid_integer`."""
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.parameter_missing(name)
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise errors.parameter_invalid_integer(name, raw)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise errors.StripeError(
            400,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=name,
            saved=False,
        )
    return value


def boolean(value: Any, name: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise errors.parameter_invalid(name, f"Invalid boolean: {value}")


def metadata(params: Mapping[str, Any], *, current: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge `metadata[...]` into the current metadata the way Stripe updates it.

    An empty string for a key removes that key; `metadata=` (empty) removes all keys.
    """
    merged = dict(current or {})
    raw = params.get("metadata")
    if raw is None:
        return merged
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise errors.parameter_invalid("metadata", "Invalid hash: metadata must be a hash of keys to strings")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise errors.parameter_invalid(f"metadata[{key}]", "Metadata values must be strings")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def expand_paths(params: Mapping[str, Any]) -> list[str]:
    raw = params.get("expand")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise errors.parameter_invalid("expand", "Invalid array: expand must be an array of strings")
