"""provisioning: whole signups by cloning the template vs. by replaying migrations."""

from __future__ import annotations

import secrets
import statistics
import time

from tests.bench.common import platform_setup, setup_django, write_results


def bench_provisioning(clone_runs: int = 20, migrate_runs: int = 3) -> None:
    platform_setup()
    setup_django()
    from tenants.models import Tenant
    from tenants.services import tenant_provision

    stamp = secrets.token_hex(3)

    def signup(i: int, by_migrations: bool) -> float:
        started = time.perf_counter()
        tenant_provision(
            name=f"Bench {i}",
            subdomain=f"bench-{stamp}-{'m' if by_migrations else 'c'}{i + 1}",
            owner_email=f"owner{i}@bench.test",
            owner_password="a long benchmark password",
            by_migrations=by_migrations,
        )
        return time.perf_counter() - started

    try:
        signup(-1, False)  # warm-up, not counted: imports, first connection, first clone
        clone = [signup(i, False) for i in range(clone_runs)]
        print(f"clone: {[round(x, 3) for x in clone]}", flush=True)
        migrate = []
        for i in range(migrate_runs):
            migrate.append(signup(i, True))
            print(f"migrate run {i}: {migrate[-1]:.1f}s", flush=True)
    finally:
        for tenant in Tenant.objects.filter(slug__startswith=f"bench-{stamp}-"):
            tenant.delete(force_drop=True)

    clone_median = statistics.median(clone)
    migrate_median = statistics.median(migrate)
    write_results(
        "provisioning",
        {
            "runs": clone_runs,
            "migrate_runs": migrate_runs,
            "clone_median_s": round(clone_median, 3),
            "clone_p95_s": round(statistics.quantiles(clone, n=20, method="inclusive")[-1], 3),
            "clone_max_s": round(max(clone), 3),
            "migrate_median_s": round(migrate_median, 2),
            "speedup": round(migrate_median / clone_median, 1),
        },
        "Whole signup (validation, tenant row, domain, schema, owner with the production password hasher, "
        "login token) through `tenants.services.tenant_provision`, by cloning the template schema vs. by "
        "replaying every migration into an empty schema. One untimed warm-up signup first.",
    )
