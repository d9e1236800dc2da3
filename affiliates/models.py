# Programs, affiliates, links, clicks, conversions and commissions arrive with the affiliate
# programs issue; the app is installed now so every tenant schema already has its slot.
