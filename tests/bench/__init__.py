"""Benchmarks (`make bench`, `make bench NAME=<name>`: `python -m tests.bench [NAME ...]`), one module
per benchmark, what they share in `common`. Never part of `make test`'s verdict.

Each writes tests/bench/results/<name>.json (a flat object of named figures plus the core
count and git commit) and <name>.md (the same as a table).

  provisioning  whole signups by cloning the template vs. by replaying migrations
  routing       a trivial API endpoint under load through tenant routing vs. without it
  clicks        `GET /r/<code>` under load, clicks buffered in Redis and drained by a real
                Celery worker + beat, vs. a bare Django 302; every click accounted for
  conversions   `POST /api/v1/conversions` under load against 10,000 clicks in the window
  stats         `GET /api/v1/stats` over 90 days for an affiliate with 1,000,000 clicks
  payouts       one payout run for 10,000 affiliates sent by a real Celery worker against the Stripe
                double with 50 ms per call; every item paid once, reconciled

The clicks, conversions, stats and payouts benchmarks each provision a tenant of their own and drop it
at the end, so that a run never counts another run's rows.
"""
