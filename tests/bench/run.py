"""Benchmarks (`make bench`, `make bench NAME=<name>`). Never part of `make test`'s verdict.

Each writes tests/bench/results/<name>.json (a flat object of named figures plus the core
count and git commit) and <name>.md (the same as a table).

  provisioning  whole signups by cloning the template vs. by replaying migrations
  routing       a trivial API endpoint under load through tenant routing vs. without it
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results"
PY = sys.executable


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return out.stdout.strip() + ("-dirty" if dirty.strip() else "")


def write_results(name: str, figures: dict[str, object], notes: str = "") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**figures, "cores": os.cpu_count(), "commit": _commit(), "measured_at": datetime.now(UTC).isoformat()}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in data.items())
    (RESULTS / f"{name}.md").write_text(f"# {name}\n\n{notes}\n\n| figure | value |\n|---|---|\n{rows}\n")
    print(f"\n{name}:\n| figure | value |\n|---|---|\n{rows}\n", flush=True)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _platform_setup(env: dict[str, str] | None = None) -> None:
    subprocess.run([PY, "manage.py", "platform_setup", "--verbosity", "0"], cwd=ROOT, env=env, check=True)


def bench_provisioning(clone_runs: int = 20, migrate_runs: int = 3) -> None:
    _platform_setup()
    _setup_django()
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, host: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/ping", headers={"Host": host})
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (loopback only)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer for {host}")


def _wrk(port: int, host: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-H", f"Host: {host}",
         f"http://127.0.0.1:{port}/api/v1/ping"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} non-2xx responses for {host}:\n{out}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def _ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    if not shutil.which("wrk"):
        raise SystemExit("the routing benchmark needs wrk (Debian/Ubuntu: apt-get install wrk)")


def bench_routing(seconds: int = 10, connections: int = 16, rounds: int = 4) -> None:
    _ensure_wrk()
    _platform_setup()
    slug = "bench-routing"
    subprocess.run(
        [PY, "manage.py", "demo_tenant", "--slug", slug, "--email", "owner@bench-routing.test"], cwd=ROOT, check=True
    )
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "SECURE_SSL_REDIRECT": "false",
        "PLATFORM_DOMAIN": "localhost",
        "LOG_LEVEL": "WARNING",
    }
    servers = {
        "tenant": ({**env}, f"{slug}.localhost", []),
        "plain": (
            {**env, "DJANGO_SETTINGS_MODULE": "untenanted_settings"},
            "localhost",
            ["--pythonpath", str(ROOT / "tests" / "bench")],
        ),
    }
    procs, ports = [], {}
    try:
        for name, (server_env, host, extra) in servers.items():
            port = _free_port()
            ports[name] = port
            procs.append(
                subprocess.Popen(
                    [
                        PY,
                        "-m",
                        "gunicorn",
                        "config.wsgi",
                        "--config",
                        str(ROOT / "deploy" / "gunicorn.conf.py"),
                        "--workers",
                        "2",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--log-level",
                        "warning",
                        *extra,
                    ],
                    cwd=ROOT,
                    env=server_env,
                    start_new_session=True,
                )
            )
            _wait_for(port, host)
        results: dict[str, list[dict[str, float]]] = {"tenant": [], "plain": []}
        for name, (_, host, _) in servers.items():
            _wrk(ports[name], host, 2, connections)  # warm-up: connections, caches
        for round_number in range(rounds):
            # Alternate which server goes first, so neither always runs on a warmer machine.
            order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
            for name in order:
                host = servers[name][1]
                results[name].append(_wrk(ports[name], host, seconds, connections))
                print(name, results[name][-1], flush=True)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)

    def mean(name: str, key: str) -> float:
        return round(statistics.mean(r[key] for r in results[name]), 2)

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
            "gunicorn_workers": 2,
        },
        "`GET /api/v1/ping` (no database work) served by gunicorn (deploy/gunicorn.conf.py, 2 sync workers, "
        "production settings, "
        "persistent connections) through tenant routing on a tenant host vs. the same view with no tenant "
        f"routing; wrk (1 thread, {connections} connections) from another process on loopback; rounds interleaved "
        "with alternating order, figures are means over the rounds.",
    )


BENCHES = {"provisioning": bench_provisioning, "routing": bench_routing}


def main(argv: list[str]) -> int:
    names = argv or ["all"]
    if names == ["all"]:
        names = list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHES)} or all", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        BENCHES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
