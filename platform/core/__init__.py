"""The kernel: what every app may import and what imports no app (errors, API primitives,
money, in-process caches, the SQL row builder). Import contracts in `make test` keep it so."""
