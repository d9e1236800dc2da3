"""Fixtures of the tracking tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from affiliates.tracking import buffer


@pytest.fixture
def tracker_on(monkeypatch, settings) -> Callable[[str], None]:
    """Point the tracker's own client (built from settings, as in production) at `url`."""

    def point(url: str) -> None:
        settings.REDIS_URL = url
        monkeypatch.setattr(buffer, "_client", None)

    return point
