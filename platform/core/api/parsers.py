"""The request parser (its own module: DRF imports parser classes while `rest_framework.views`
is still loading, so they cannot live next to the API helpers that import views)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """JSON whose strings PostgreSQL can store. `\\u0000` and lone UTF-16 surrogates (`\\ud800`)
    are valid JSON escapes, but text columns refuse NUL and UTF-8 cannot encode a surrogate, so
    either one reaching any query (a slug lookup, a JSON column) was a 500. Checking the whole
    document once here covers every field, keys included, instead of each field remembering."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            unstorable = _has_unstorable_text(data)
        except RecursionError:
            # json.loads and the walk below both recurse: `[[[[...` a few thousand deep is a
            # RecursionError, which DRF does not catch
            raise exceptions.ParseError("JSON nested too deeply.") from None
        if unstorable:
            raise exceptions.ParseError("JSON strings may not contain NUL characters or unpaired surrogates.")
        return data


_UNSTORABLE = re.compile("[\\x00\\ud800-\\udfff]")


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False
