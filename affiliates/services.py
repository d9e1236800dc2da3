"""Writes for programs, affiliates, links, coupons, commission rules and API keys.

Run inside the tenant's schema. Tracking, conversions and commissions have modules of their own
(`tracking`, `conversions`, `commissions`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from affiliates import codes, destinations, schedules
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, ApiKey, CommissionRule, Coupon, Link, Program
from affiliates.selectors import programs_forget
from core import money
from core.localcache import forget_after_commit

STAFF_ROLES = frozenset({User.Role.OWNER, User.Role.ADMIN})
_CODE_ATTEMPTS = 8


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) in STAFF_ROLES


# --- programs -------------------------------------------------------------------------------


def _domains_clean(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        try:
            domain = destinations.domain_normalize(value)
        except destinations.DestinationError as exc:
            raise AffiliateError(exc.code, f"{value!r}: {exc.message}", field="allowed_domains") from None
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def _destination_clean(url: str, *, program: Program, field: str) -> str:
    if not url:
        return ""
    try:
        return destinations.destination_clean(url, allowed_domains=program.allowed_domains)
    except destinations.DestinationError as exc:
        raise AffiliateError(exc.code, exc.message, field=field) from None


def program_create(*, name: str, slug: str, currency: str = "USD", **fields: Any) -> Program:
    try:
        currency = money.currency_clean(currency)
    except money.MoneyError as exc:
        raise AffiliateError(exc.code, exc.message, field="currency") from None
    program = Program(name=name, slug=slug, currency=currency)
    # The default threshold is 50 in the program's currency, whatever its minor unit.
    program.payout_threshold_minor = 50 * 10 ** money.minor_places(currency)
    return _program_apply(program=program, fields=fields, creating=True)


def program_update(*, program: Program, **fields: Any) -> Program:
    if "currency" in fields and fields["currency"] != program.currency:
        if program.conversions.exists():
            raise AffiliateError(
                "currency_locked", "The currency cannot change once conversions exist.", field="currency", status=409
            )
        try:
            fields["currency"] = money.currency_clean(fields["currency"])
        except money.MoneyError as exc:
            raise AffiliateError(exc.code, exc.message, field="currency") from None
    return _program_apply(program=program, fields=fields, creating=False)


def _program_apply(*, program: Program, fields: dict[str, Any], creating: bool) -> Program:
    if "allowed_domains" in fields:
        fields["allowed_domains"] = _domains_clean(fields["allowed_domains"])
    current = {name: getattr(program, name) for name in schedules.FIELDS}
    fields.update(schedules.schedule_merge(current=current, changes=fields))
    for field, message in schedules.schedule_errors(
        schedule=fields["payout_schedule"],
        weekday=fields["payout_weekday"],
        day_of_month=fields["payout_day_of_month"],
    ).items():
        raise AffiliateError("schedule_invalid", message, field=field)
    for key, value in fields.items():
        setattr(program, key, value)
    program.default_destination = _destination_clean(
        program.default_destination, program=program, field="default_destination"
    )
    try:
        with transaction.atomic():
            program.save()
            programs_forget()
    except IntegrityError:
        raise AffiliateError("slug_taken", "Another program uses that slug.", field="slug", status=409) from None
    return program


# --- affiliates -----------------------------------------------------------------------------


def _code_for_user(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return codes.code_normalize(value)
    except codes.CodeError as exc:
        raise AffiliateError(exc.code, exc.message, field="code") from None


def affiliate_apply(
    *,
    program: Program,
    user: User,
    code: str | None = None,
    parent_code: str | None = None,
) -> Affiliate:
    """Enrol `user` in `program`. Auto-approving programs skip the pending state.

    A generated code is retried on a collision (two applications racing for the same random
    code); a chosen code that is taken is refused."""
    if user.role in STAFF_ROLES:
        raise AffiliateError("staff_cannot_apply", "Staff accounts cannot be affiliates of their own business.")
    if not program.is_active:
        raise AffiliateError("program_inactive", "This program does not accept applications.", field="program")
    chosen = _code_for_user(code)
    parent = None
    if parent_code:
        parent = Affiliate.objects.filter(code=parent_code.strip().lower(), program=program).first()
        if parent is None:
            raise AffiliateError("parent_unknown", "No affiliate of this program has that code.", field="parent_code")
    now = timezone.now()
    status = Affiliate.Status.APPROVED if program.auto_approve else Affiliate.Status.PENDING
    for _attempt in range(1 if chosen else _CODE_ATTEMPTS):
        candidate = chosen or codes.code_generate()
        try:
            with transaction.atomic():
                affiliate = Affiliate.objects.create(
                    program=program,
                    user=user,
                    code=candidate,
                    parent=parent,
                    status=status,
                    status_changed_at=now if status == Affiliate.Status.APPROVED else None,
                    status_reason="Auto-approved by the program." if status == Affiliate.Status.APPROVED else "",
                )
                Link.objects.create(affiliate=affiliate, slug="", name="Default link")
        except IntegrityError as exc:
            if "affiliate_one_per_program" in str(exc):
                raise AffiliateError(
                    "already_applied", "You have already applied to this program.", status=409
                ) from None
            if chosen:
                raise AffiliateError(
                    "code_taken", "That code is taken; choose another.", field="code", status=409
                ) from None
            continue
        return affiliate
    raise AffiliateError("code_unavailable", "Could not allocate a referral code; try again.", status=503)


_TRANSITIONS: dict[str, set[str]] = {
    Affiliate.Status.APPROVED: {Affiliate.Status.PENDING, Affiliate.Status.REJECTED, Affiliate.Status.SUSPENDED},
    Affiliate.Status.REJECTED: {Affiliate.Status.PENDING},
    Affiliate.Status.SUSPENDED: {Affiliate.Status.APPROVED},
}


def affiliate_set_status(*, affiliate: Affiliate, status: str, by: User, reason: str = "") -> Affiliate:
    with transaction.atomic():
        affiliate = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if affiliate.status == status:
            return affiliate
        if affiliate.status not in _TRANSITIONS.get(status, set()):
            raise AffiliateError(
                "invalid_transition",
                f"An affiliate that is {affiliate.status} cannot become {status}.",
                field="status",
                status=409,
            )
        if status in {Affiliate.Status.REJECTED, Affiliate.Status.SUSPENDED} and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        affiliate.status = status
        affiliate.status_reason = reason.strip()
        affiliate.status_changed_at = timezone.now()
        affiliate.status_changed_by = by
        affiliate.save(update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"])
    return affiliate


# --- links and coupons ----------------------------------------------------------------------


def link_create(
    *,
    affiliate: Affiliate,
    slug: str,
    destination_url: str = "",
    name: str = "",
    campaign: str = "",
    sub_ids: dict[str, str] | None = None,
) -> Link:
    if not slug:
        raise AffiliateError("slug_required", "Named links need a slug.", field="slug")
    destination = _destination_clean(destination_url, program=affiliate.program, field="destination_url")
    try:
        with transaction.atomic():
            return Link.objects.create(
                affiliate=affiliate,
                slug=slug.lower(),
                destination_url=destination,
                name=name,
                campaign=campaign,
                sub_ids=sub_ids or {},
            )
    except IntegrityError:
        raise AffiliateError(
            "slug_taken", "You already have a link with that slug.", field="slug", status=409
        ) from None


def link_update(*, link: Link, **fields: Any) -> Link:
    if "destination_url" in fields:
        fields["destination_url"] = _destination_clean(
            fields["destination_url"], program=link.affiliate.program, field="destination_url"
        )
    for key, value in fields.items():
        setattr(link, key, value)
    link.save()
    return link


def coupon_create(*, affiliate: Affiliate, code: str) -> Coupon:
    try:
        normalized = codes.coupon_normalize(code)
    except codes.CodeError as exc:
        raise AffiliateError(exc.code, exc.message, field="code") from None
    try:
        with transaction.atomic():
            return Coupon.objects.create(affiliate=affiliate, code=normalized)
    except IntegrityError:
        raise AffiliateError(
            "coupon_taken", "That coupon code is already assigned.", field="code", status=409
        ) from None


# --- commission rules -----------------------------------------------------------------------


def _rule_check(rule: CommissionRule) -> None:
    if rule.kind == CommissionRule.Kind.PERCENT:
        if rule.percent is None:
            raise AffiliateError("percent_required", "A percentage rule needs a percent.", field="percent")
        if not (Decimal(0) <= rule.percent <= Decimal(100)):
            raise AffiliateError("percent_range", "The percent must be between 0 and 100.", field="percent")
    elif rule.flat_minor is None:
        raise AffiliateError("flat_amount_required", "A flat rule needs an amount.", field="flat_amount")
    if rule.min_minor is not None and rule.max_minor is not None and rule.min_minor > rule.max_minor:
        raise AffiliateError("min_above_max", "The minimum exceeds the maximum.", field="min_amount")


def rule_save(*, rule: CommissionRule, affiliates: list[Affiliate] | None = None) -> CommissionRule:
    _rule_check(rule)
    if affiliates is not None and any(a.program_id != rule.program_id for a in affiliates):
        raise AffiliateError(
            "affiliate_other_program", "Every affiliate must belong to the rule's program.", field="affiliates"
        )
    with transaction.atomic():
        rule.save()
        if affiliates is not None:
            rule.affiliates.set(affiliates)
        programs_forget()
    return rule


# --- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


def api_key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str, scopes: list[str], by: User) -> IssuedKey:
    valid = set(ApiKey.Scope.values)
    if not scopes or any(scope not in valid for scope in scopes):
        raise AffiliateError("scopes_invalid", f"Choose scopes among {sorted(valid)}.", field="scopes")
    prefix = secrets.token_hex(4)
    secret = f"ak_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=api_key_digest(secret), scopes=sorted(set(scopes)), created_by=by
    )
    return IssuedKey(api_key=key, secret=secret)


def api_key_cache_key(digest: str) -> str:
    return f"#apikey:{connection.schema_name}:{digest}"


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        forget_after_commit([api_key_cache_key(api_key.key_hash)])
    return api_key


# --- writes the API views made themselves before ---------------------------------------------


@transaction.atomic
def affiliate_register(
    *,
    program: Program,
    email: str | None,
    password: str | None,
    name: str = "",
    code: str | None = None,
    parent_code: str | None = None,
) -> Affiliate:
    """Apply to `program` without an account: makes the affiliate's account (email and password)
    and enrols it, in one transaction (a refused application leaves no account behind)."""
    if not email or not password:
        raise AffiliateError("credentials_required", "Give an email and a password.", field="email")
    if User.objects.filter(email__iexact=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, name=name, role=User.Role.AFFILIATE)
    except IntegrityError:
        # Two applications with one email raced past the check; the unique index decided.
        raise _email_taken() from None
    return affiliate_apply(program=program, user=user, code=code, parent_code=parent_code)


def _email_taken() -> AffiliateError:
    return AffiliateError("email_taken", "That email has an account here; sign in first.", field="email", status=409)


def rule_create(*, affiliates: list[Affiliate] | None = None, **fields: Any) -> CommissionRule:
    return rule_save(rule=CommissionRule(**fields), affiliates=affiliates)


def rule_update(*, rule: CommissionRule, affiliates: list[Affiliate] | None = None, **fields: Any) -> CommissionRule:
    """Change a rule's fields (and, given, the affiliates it is limited to); never its program,
    whose commissions it computed."""
    if "program" in fields and fields["program"] != rule.program:
        raise AffiliateError("program_locked", "A rule cannot move to another program.", field="program")
    for key, value in fields.items():
        setattr(rule, key, value)
    return rule_save(rule=rule, affiliates=affiliates)


def coupon_update(*, coupon: Coupon, is_active: bool | None = None) -> Coupon:
    """Only the active flag changes: a code that was handed out must keep meaning the same person."""
    if is_active is not None:
        coupon.is_active = is_active
        coupon.save(update_fields=["is_active"])
    return coupon
