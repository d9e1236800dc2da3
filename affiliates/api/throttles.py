"""Rate limits of the tracking endpoints."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rest_framework.throttling import AnonRateThrottle

logger = logging.getLogger(__name__)


class TrackThrottle(AnonRateThrottle):
    """The snippet's per-address limit, kept in the cache (Redis). When the cache fails, the click
    is let through rather than answered 500: the limit protects the platform from floods, and a
    flood of one address is still flagged by the tracker; losing real clicks for as long as
    Redis is down would be worse."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            logger.warning("rate limit store unavailable; letting the click through", exc_info=True)
            return True
