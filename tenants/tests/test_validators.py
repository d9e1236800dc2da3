import pytest

from tenants.errors import TenantError
from tenants.validators import subdomain_clean


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "subdomain_required"),
        ("   ", "subdomain_required"),
        (None, "subdomain_required"),
        ("ab", "subdomain_too_short"),
        ("a" * 64, "subdomain_too_long"),
        ("acme_co", "subdomain_invalid_characters"),
        ("acme.co", "subdomain_invalid_characters"),
        ("acmé", "subdomain_invalid_characters"),
        ("ac me", "subdomain_invalid_characters"),
        ("-acme", "subdomain_hyphen_at_edge"),
        ("acme-", "subdomain_hyphen_at_edge"),
        ("xn--acme", "subdomain_double_hyphen"),
        ("www", "subdomain_reserved"),
        ("api", "subdomain_reserved"),
        ("admin", "subdomain_reserved"),
        ("static", "subdomain_reserved"),
        ("public", "subdomain_reserved"),
    ],
)
def test_each_broken_rule_has_its_own_code(value, code):
    with pytest.raises(TenantError) as excinfo:
        subdomain_clean(value)
    assert excinfo.value.code == code
    assert excinfo.value.field == "subdomain"
    assert excinfo.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("acme", "acme"), ("  Acme-Co  ", "acme-co"), ("a1b", "a1b"), ("a" * 63, "a" * 63), ("a-b-c", "a-b-c")],
)
def test_valid_subdomains_are_normalised(value, expected):
    assert subdomain_clean(value) == expected
