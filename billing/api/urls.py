from django.urls import include, path
from rest_framework.routers import SimpleRouter

from billing.api.views import fundings, items, ledger, my_payouts, payout_account, runs

router = SimpleRouter(trailing_slash=False)
router.register("payout-runs", runs.PayoutRunViewSet, basename="payout-run")
router.register("payout-items", items.PayoutItemViewSet, basename="payout-item")
router.register("ledger/entries", ledger.LedgerEntryViewSet, basename="ledger-entry")
router.register("fundings", fundings.FundingViewSet, basename="funding")

account = payout_account.PayoutAccountViewSet

urlpatterns = [
    path("ledger", ledger.LedgerView.as_view(), name="ledger"),
    path("payout-account", account.as_view({"get": "retrieve"}), name="payout-account"),
    path("payout-account/onboarding", account.as_view({"post": "onboarding"}), name="payout-account-onboarding"),
    path("payout-account/refresh", account.as_view({"post": "refresh"}), name="payout-account-refresh"),
    path(
        "payout-account/dashboard-link",
        account.as_view({"post": "dashboard_link"}),
        name="payout-account-dashboard-link",
    ),
    path("my/payouts", my_payouts.MyPayoutsView.as_view(), name="my-payouts"),
    path("my/payouts.csv", my_payouts.MyPayoutsCsvView.as_view(), name="my-payouts-csv"),
    path("", include(router.urls)),
]
