from __future__ import annotations

from rest_framework import mixins


class NoDelete(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin):
    """Rows that others refer to (programs, links, coupons) are deactivated, never deleted."""

    http_method_names = ["get", "post", "patch"]
