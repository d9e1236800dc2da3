"""The payouts REST API (`/api/v1/` on the tenant host), one module per resource. Views validate
and delegate to the billing services.

Who may call what (declared on each view, enforced by `core.api.viewsets`): staff (owner, admin),
signed in, make and confirm runs, fund the ledger and read it all; an affiliate, signed in, sets
up and reads only its own payout account and payouts. API keys reach none of it: keys are for
merchants' servers sending conversions, and money (its balance, who was paid what, Checkout
links) stays behind a person's session. A key scope for payouts can be added when a merchant's
server has a use for it.

Stripe errors never come out as a 500 (`stripe_errors`).
"""
