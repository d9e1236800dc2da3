"""routing: a trivial API endpoint (`GET /api/v1/ping`) under load through tenant routing vs. without it."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.bench.common import (
    PY,
    ROOT,
    WORKERS,
    ensure_wrk,
    gunicorn_serving,
    platform_setup,
    production_env,
    runs_mean,
    untenanted,
    write_results,
    wrk_run,
)


def bench_routing(seconds: int = 10, connections: int = 16, rounds: int = 4) -> None:
    ensure_wrk()
    platform_setup()
    slug = "bench-routing"
    subprocess.run(
        [PY, "-m", "devtools.demo_tenant", "--slug", slug, "--email", "owner@bench-routing.test"], cwd=ROOT, check=True
    )
    env = production_env()
    plain_env, plain_extra = untenanted(env)
    hosts = {"tenant": f"{slug}.localhost", "plain": "localhost"}
    results: dict[str, list[dict[str, Any]]] = {"tenant": [], "plain": []}
    with (
        gunicorn_serving(env, hosts["tenant"]) as tenant_port,
        gunicorn_serving(plain_env, hosts["plain"], plain_extra) as plain_port,
    ):
        ports = {"tenant": tenant_port, "plain": plain_port}
        for name in hosts:
            wrk_run(ports[name], hosts[name], 2, connections)  # warm-up: connections, caches
        for round_number in range(rounds):
            # Alternate which server goes first, so neither always runs on a warmer machine.
            order = list(hosts) if round_number % 2 == 0 else list(reversed(hosts))
            for name in order:
                results[name].append(wrk_run(ports[name], hosts[name], seconds, connections))
                print(name, results[name][-1], flush=True)

    def mean(name: str, key: str) -> float:
        return runs_mean(results[name], key)

    write_results(
        "routing",
        {
            "tenant_rps": mean("tenant", "rps"),
            "plain_rps": mean("plain", "rps"),
            "ratio": round(mean("tenant", "rps") / mean("plain", "rps"), 3),
            "tenant_p50_ms": mean("tenant", "p50_ms"),
            "tenant_p99_ms": mean("tenant", "p99_ms"),
            "plain_p50_ms": mean("plain", "p50_ms"),
            "plain_p99_ms": mean("plain", "p99_ms"),
            "seconds_per_round": seconds,
            "rounds": rounds,
            "connections": connections,
            "gunicorn_workers": WORKERS,
        },
        f"`GET /api/v1/ping` (no database work) served by gunicorn (deploy/gunicorn.conf.py, {WORKERS} sync workers, "
        "production settings, "
        "persistent connections) through tenant routing on a tenant host vs. the same view with no tenant "
        f"routing; wrk (1 thread, {connections} connections) from another process on loopback; rounds interleaved "
        "with alternating order, figures are means over the rounds.",
    )
