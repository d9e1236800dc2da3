"""CSV exports streamed row by row, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: list[str], rows: Iterator[list[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            # Cells starting with = + - @ are formulas to spreadsheets; a customer id must not run.
            yield writer.writerow(["'" + c if isinstance(c, str) and c and c[0] in "=+-@" else c for c in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
