"""`python -m tests.bench [NAME ...]` (`make bench`, `make bench NAME=<name>`): run the benchmarks
named, or all of them; exit 1 if any failed (the others' figures are still written)."""

from __future__ import annotations

import sys
import traceback

from tests.bench.clicks import bench_clicks
from tests.bench.conversions import bench_conversions
from tests.bench.payouts import bench_payouts
from tests.bench.provisioning import bench_provisioning
from tests.bench.routing import bench_routing
from tests.bench.stats import bench_stats

BENCHES = {
    "provisioning": bench_provisioning,
    "routing": bench_routing,
    "clicks": bench_clicks,
    "conversions": bench_conversions,
    "stats": bench_stats,
    "payouts": bench_payouts,
}


def main(argv: list[str]) -> int:
    names = argv or ["all"]
    if names == ["all"]:
        names = list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHES)} or all", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        try:
            BENCHES[name]()
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
