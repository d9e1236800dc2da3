"""API primitives shared by every app's `api` package: the error body and handler, strict
fields, the parser, pagination, CSV streaming and date filters."""
