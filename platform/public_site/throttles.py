from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class SignupThrottle(SimpleRateThrottle):
    """Signups per client address (SIGNUP_RATE); each one creates a schema, so they are dear.

    The rate is read from settings on each use (DRF's own rate table is frozen at import), and
    the address is the connection's unless REST_FRAMEWORK NUM_PROXIES says how many proxies
    to trust in X-Forwarded-For."""

    scope = "signup"

    def get_rate(self) -> str:
        return settings.SIGNUP_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
