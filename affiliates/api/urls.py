from django.urls import include, path
from rest_framework.routers import SimpleRouter

from affiliates.api.views import (
    affiliates,
    api_keys,
    clicks,
    commissions,
    conversions,
    coupons,
    customers,
    links,
    programs,
    rules,
    stats,
    track,
)

router = SimpleRouter(trailing_slash=False)
router.register("programs", programs.ProgramViewSet, basename="program")
router.register("commission-rules", rules.CommissionRuleViewSet, basename="commission-rule")
router.register("affiliates", affiliates.AffiliateViewSet, basename="affiliate")
router.register("links", links.LinkViewSet, basename="link")
router.register("coupons", coupons.CouponViewSet, basename="coupon")
router.register("clicks", clicks.ClickViewSet, basename="click")
router.register("customers", customers.CustomerViewSet, basename="customer")
router.register("conversions", conversions.ConversionViewSet, basename="conversion")
router.register("commissions", commissions.CommissionViewSet, basename="commission")
router.register("api-keys", api_keys.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("track/clicks", track.TrackClickView.as_view(), name="track-click"),
    path("stats", stats.StatsView.as_view(), name="stats"),
    path("", include(router.urls)),
]
