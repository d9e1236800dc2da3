# Tenant-side payout models arrive with the payouts issue; dj-stripe's tables already live in
# the public schema (installed and migrated by the foundation).
