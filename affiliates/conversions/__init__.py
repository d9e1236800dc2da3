"""Customers, conversions (with attribution, fraud checks and commissions) and refunds, as a
pipeline: `validate` checks what was sent, `context` loads what the decision needs (typed and
frozen), `plan` decides (pure), `write` persists in one statement; `record` runs the four;
`refunds` apart. Run inside the tenant's schema."""

from affiliates.conversions.customers import customer_upsert
from affiliates.conversions.record import conversion_record
from affiliates.conversions.refunds import conversion_refund
from affiliates.conversions.validate import BUILTIN_EVENTS

__all__ = ["BUILTIN_EVENTS", "conversion_record", "conversion_refund", "customer_upsert"]
