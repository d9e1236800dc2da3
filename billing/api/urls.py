from django.urls import include, path
from rest_framework.routers import SimpleRouter

from billing.api import views

router = SimpleRouter(trailing_slash=False)
router.register("payout-runs", views.PayoutRunViewSet, basename="payout-run")
router.register("payout-items", views.PayoutItemViewSet, basename="payout-item")
router.register("ledger/entries", views.LedgerEntryViewSet, basename="ledger-entry")
router.register("fundings", views.FundingViewSet, basename="funding")

urlpatterns = [
    path("ledger", views.LedgerView.as_view(), name="ledger"),
    path("payout-account", views.PayoutAccountView.as_view(), name="payout-account"),
    path("payout-account/onboarding", views.PayoutAccountOnboardingView.as_view(), name="payout-account-onboarding"),
    path("payout-account/refresh", views.PayoutAccountRefreshView.as_view(), name="payout-account-refresh"),
    path(
        "payout-account/dashboard-link",
        views.PayoutAccountDashboardLinkView.as_view(),
        name="payout-account-dashboard-link",
    ),
    path("my/payouts", views.MyPayoutsView.as_view(), name="my-payouts"),
    path("my/payouts.csv", views.MyPayoutsCsvView.as_view(), name="my-payouts-csv"),
    path("", include(router.urls)),
]
