"""The two kinds of pages every list in the API uses."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class Pages(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class NewestFirst(CursorPagination):
    """Cursor pages for the big, growing lists: stable under inserts, no COUNT(*)."""

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "limit"
    ordering = "-id"
