"""Stripe list pages: newest first, `limit` (1-100, default 10), `starting_after` / `ending_before`
cursors, `has_more`, and the `created` filter (`created=<t>` or `created[gte]=<t>` and friends)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import errors, forms, objects

Obj = dict[str, Any]
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


def page(newest_first: Sequence[Obj], params: Mapping[str, Any], *, url: str) -> Obj:
    """One page of `newest_first` as a Stripe list object (items copied, private fields dropped)."""
    limit = forms.integer(params, "limit", required=False, minimum=1) or 10
    if limit > 100:
        raise errors.StripeError(
            400,
            "This value must be less than or equal to 100.",
            code="parameter_invalid_integer",
            param="limit",
            saved=False,
        )
    items = [item for item in newest_first if _created_matches(item, params)]
    after = forms.optional_str(params, "starting_after")
    before = forms.optional_str(params, "ending_before")
    if after is not None:
        window = items[_index(items, after, "starting_after") + 1 :]
        chosen = window[:limit]
    elif before is not None:
        window = items[: _index(items, before, "ending_before")]
        chosen = window[-limit:]
    else:
        window = items
        chosen = window[:limit]
    data = [copy.deepcopy(objects.public(item)) for item in chosen]
    return objects.list_object(url, data, has_more=len(window) > limit)


def _index(items: Sequence[Obj], object_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == object_id:
            return index
    raise errors.StripeError(400, f"No such object: '{object_id}'", code="resource_missing", param=param)


def _created_matches(item: Obj, params: Mapping[str, Any]) -> bool:
    created = params.get("created")
    if created is None:
        return True
    if isinstance(created, str):
        return item["created"] == forms.integer(params, "created", required=True)
    if not isinstance(created, dict):
        raise errors.parameter_invalid("created", "Invalid created: must be an integer or a hash")
    for name in created:
        compare = _COMPARISONS.get(name)
        if compare is None:
            raise errors.parameter_invalid(f"created[{name}]", f"Received unknown parameter: created[{name}]")
        bound = forms.integer(created, name, required=True) or 0
        if not compare(item["created"], bound):
            return False
    return True
