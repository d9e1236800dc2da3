from django.urls import include, path
from rest_framework.routers import SimpleRouter

from affiliates.api import views

router = SimpleRouter(trailing_slash=False)
router.register("programs", views.ProgramViewSet, basename="program")
router.register("commission-rules", views.CommissionRuleViewSet, basename="commission-rule")
router.register("affiliates", views.AffiliateViewSet, basename="affiliate")
router.register("links", views.LinkViewSet, basename="link")
router.register("coupons", views.CouponViewSet, basename="coupon")
router.register("clicks", views.ClickViewSet, basename="click")
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("conversions", views.ConversionViewSet, basename="conversion")
router.register("commissions", views.CommissionViewSet, basename="commission")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("track/clicks", views.track_click, name="track-click"),
    path("stats", views.stats, name="stats"),
    path("", include(router.urls)),
]
