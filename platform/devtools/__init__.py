"""Development tools, apart from the product and outside the production package (the wheel lists
the product's packages only): the embedded-server launcher behind `make run`, `make test` and
`make bench` (`devenv`), the local Stripe double (`stripe_double`), the demo tenant's seeding
(`demo_tenant`) and the offline payout flow over HTTP (`demo_flow`). The product never imports
this package; it is on the import path of a development checkout through the editable install."""
