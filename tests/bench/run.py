"""Benchmarks (`make bench`, `make bench NAME=<name>`). Never part of `make test`'s verdict.

Each writes tests/bench/results/<name>.json (a flat object of named figures plus the core
count and git commit) and <name>.md (the same as a table).

  provisioning  whole signups by cloning the template vs. by replaying migrations
  routing       a trivial API endpoint under load through tenant routing vs. without it
  clicks        `GET /r/<code>` under load, clicks buffered in Redis and drained by a real
                Celery worker + beat, vs. a bare Django 302; every click accounted for
  conversions   `POST /api/v1/conversions` under load against 10,000 clicks in the window
  stats         `GET /api/v1/stats` over 90 days for an affiliate with 1,000,000 clicks
  payouts       one payout run for 10,000 affiliates sent by a real Celery worker against the Stripe
                double with 50 ms per call; every item paid once, reconciled

The clicks, conversions, stats and payouts benchmarks each provision a tenant of their own and drop it
at the end, so that a run never counts another run's rows.
"""

from __future__ import annotations

import contextlib
import http.client
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
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk_requests.lua"
PY = sys.executable
# gunicorn's worker count, the default of deploy/gunicorn.conf.py (one more than the cores);
# BENCH_WORKERS tries another (both sides of a comparison always get the same).
WORKERS = int(os.environ.get("BENCH_WORKERS") or (os.cpu_count() or 1) + 1)
# The tracker ignores empty and crawler user agents by design, so the load must look like a browser.
BROWSER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


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


def _percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _prose(text: str) -> str:
    """A paragraph written indented in the source, as one line for the results' notes."""
    return " ".join(text.split())


def _target(name: str, value: float, ok: bool, goal: str) -> dict[str, object]:
    """A figure and, beside it, its target and whether this run met it."""
    return {name: value, f"{name}_target": f"{goal}: {'met' if ok else 'MISSED'}"}


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


# --- servers and load, shared by the HTTP benchmarks -----------------------------------------


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


def _production_env(**extra: str) -> dict[str, str]:
    """What the web server (and the Celery processes) run with: production settings, as deployed."""
    return {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "SECURE_SSL_REDIRECT": "false",
        "PLATFORM_DOMAIN": "localhost",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _untenanted(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The same project without tenant routing (tests/bench/untenanted_settings.py): the baseline."""
    return {**env, "DJANGO_SETTINGS_MODULE": "untenanted_settings"}, ["--pythonpath", str(BENCH)]


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def _gunicorn(
    env: dict[str, str], host: str, extra: list[str] | None = None, workers: int | None = None
) -> Iterator[int]:
    """gunicorn exactly as deployed (deploy/gunicorn.conf.py: sync workers, persistent database
    connections) on a free loopback port; yields the port once `host` answers."""
    workers = workers or WORKERS
    port = _free_port()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *(extra or []),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_for(port, host)
        yield port
    finally:
        _stop(proc)


@contextlib.contextmanager
def _celery_worker_and_beat(env: dict[str, str]) -> Iterator[None]:
    """A Celery worker and beat as `make run` starts them (config/devenv.py), so clicks are
    drained by the real `affiliates.tasks.clicks_drain` beat entry (every second, per active
    tenant). Run with CELERY_QUEUE set to a queue of this run's own, so that no other worker
    takes its tasks and it takes no one else's."""
    with tempfile.TemporaryDirectory(prefix="bench-beat-") as tmp:
        worker = subprocess.Popen(
            [PY, "-m", "celery", "--quiet", "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        beat = subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "--quiet",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "-S",
                "tenants.scheduler.ActiveTenantScheduler",
                "-s",
                str(Path(tmp) / "schedule"),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            yield
        finally:
            _stop(beat)
            _stop(worker, timeout=60)  # a warm shutdown finishes the drain in progress


def _cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this benchmark) so far.

    This benchmark: this process and its descendants (gunicorn, Celery; wrk once reaped, through
    the parent's cumulative child times), the PostgreSQL backends of its database and Redis.
    On a shared 2-core machine another session's test run can take a whole core; the difference
    is reported (`other_load_cores`) so that depressed figures can be recognised as such. It is
    a few hundredths high: processes that end before the second reading (e.g. the PostgreSQL
    backend the Celery worker opens for each task) count as other load."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    db_marker = f" {urlsplit(os.environ.get('DATABASE_URL', '')).path.lstrip('/') or 'affiliate_platform'} "
    parents: dict[int, int] = {}
    own: dict[int, int] = {}
    ours = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                name, rest = f.read().rsplit(")", 1)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        values = rest.split()
        pid = int(entry)
        parents[pid] = int(values[1])
        # utime + stime + cutime + cstime (children already reaped: wrk, finished workers)
        own[pid] = sum(int(v) for v in values[11:15])
        if db_marker in cmdline or name.endswith("(redis-server"):
            ours += own[pid]
    root = os.getpid()
    for pid, jiffies in own.items():
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            ours += jiffies
    return busy / hz, ours / hz


@contextlib.contextmanager
def _other_load(into: dict[str, Any]) -> Iterator[None]:
    """Store in into["other_load_cores"] the cores used by other processes while the block ran."""
    busy, ours = _cpu_seconds()
    started = time.monotonic()
    yield
    busy_after, ours_after = _cpu_seconds()
    into["other_load_cores"] = round(((busy_after - busy) - (ours_after - ours)) / (time.monotonic() - started), 2)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _wrk(
    port: int,
    host: str,
    seconds: int,
    connections: int,
    *,
    path: str = "/api/v1/ping",
    threads: int = 1,
    headers: tuple[str, ...] = (),
    script_args: list[str] | None = None,
) -> dict[str, Any]:
    """One wrk run. Without `script_args`, any non-2xx/3xx response is an error; with them,
    tests/bench/wrk_requests.lua builds the requests and counts responses whose status is not
    the expected one (`unexpected`), which the caller judges."""
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "-H",
        f"Host: {host}",
    ]
    for header in headers:
        command += ["-H", header]
    if script_args is not None:
        command += ["-s", str(WRK_SCRIPT)]
    command.append(f"http://127.0.0.1:{port}{path}")
    if script_args is not None:
        command += ["--", *script_args]
    meter: dict[str, Any] = {}
    with _other_load(meter):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    done = re.search(r"(\d+) requests in ([\d.]+\w+),", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    unexpected = re.search(r"^unexpected_status (\d+)", out, re.M)
    sample = re.search(r"^first_unexpected (.*)$", out, re.M)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": int(done.group(1)),
        "seconds": _ms(done.group(2)) / 1000,
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "unexpected": int(unexpected.group(1)) if unexpected else 0,
        "unexpected_sample": sample.group(1) if sample else "",
        **meter,
    }
    if script_args is None and result["non_2xx_3xx"]:
        raise RuntimeError(f"{result['non_2xx_3xx']} non-2xx responses for {host}:\n{out}")
    return result


def _ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    if not shutil.which("wrk"):
        raise SystemExit("the HTTP benchmarks need wrk (Debian/Ubuntu: apt-get install wrk)")


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.mean(r[key] for r in runs), 2)


# --- tenants and data, shared by the affiliate benchmarks ------------------------------------


@contextlib.contextmanager
def _bench_tenant(kind: str) -> Iterator[tuple[Any, Any]]:
    """A fresh tenant (cloned from the template, as a signup is) with its owner, dropped at the end."""
    from tenants.services import tenant_provision

    provisioned = tenant_provision(
        name=f"Bench {kind}",
        subdomain=f"bench-{kind}-{secrets.token_hex(3)}",
        owner_email=f"owner@bench-{kind}.test",
        owner_password="a long benchmark password",
    )
    tenant = provisioned.tenant
    try:
        yield tenant, provisioned.owner
    finally:
        tenant.delete(force_drop=True)
        _redis_forget(tenant.schema_name, tenant.slug)


def _redis_forget(*fragments: str) -> None:
    """Delete the Redis keys naming a dropped tenant (its click stream and counters, routing
    entries, this run's Celery queue), which deleting the tenant leaves behind."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for fragment in fragments:
        for key in client.scan_iter(match=f"*{fragment}*", count=1000):
            client.delete(key)


def _host(tenant: Any) -> str:
    return f"{tenant.slug}.localhost"  # PLATFORM_DOMAIN=localhost, as _production_env sets


def _program_with_affiliates(owner: Any, count: int, *, rule_percent: str | None = None) -> tuple[Any, list[Any]]:
    """A program and `count` approved affiliates, through the services (as the API would)."""
    from decimal import Decimal

    from accounts.models import User
    from affiliates import services
    from affiliates.models import Affiliate, CommissionRule

    program = services.program_create(
        name="Bench program",
        slug="bench",
        allowed_domains=["shop.example.com"],
        default_destination="https://shop.example.com/",
    )
    if rule_percent is not None:
        services.rule_save(rule=CommissionRule(program=program, name="Standard", percent=Decimal(rule_percent)))
    affiliates = []
    for i in range(count):
        # No password: hashing one is not what these benchmarks measure.
        user = User.objects.create_user(email=f"affiliate{i}@bench.test", role=User.Role.AFFILIATE)
        applied = services.affiliate_apply(program=program, user=user)
        affiliates.append(services.affiliate_set_status(affiliate=applied, status=Affiliate.Status.APPROVED, by=owner))
    return program, affiliates


def _clicks_insert(
    *,
    program_id: int,
    targets: list[tuple[int, int]],
    count: int,
    visitors: int,
    since: datetime,
    until: datetime,
    referrers: tuple[str, ...] = ("",),
) -> None:
    """Insert `count` clicks in one statement, spread evenly over [since, until), visitor i % visitors
    (numbered from 1), each visitor's successive clicks on successive (affiliate, link) targets.
    Ids are time-ordered like tracking.new_click_id(), so the primary key grows as in production."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO affiliates_click (id, program_id, affiliate_id, link_id, visitor_id, created_at, source, "
            "landing_url, referrer, user_agent, ip_hash, sub_ids, utm, is_self, flagged) "
            "SELECT (lpad(to_hex((extract(epoch FROM s.at) * 1000)::bigint), 12, '0') || '7' || substr(s.h, 1, 3) "
            "        || '8' || substr(s.h, 4, 15))::uuid, "
            "  %(program)s, (%(affiliates)s::bigint[])[s.k], (%(links)s::bigint[])[s.k], "
            # visitor n is 00000000-0000-4000-8000-<n, 12 digits>, as wrk_requests.lua names them
            "  ('00000000-0000-4000-8000-' || lpad((s.i %% %(visitors)s + 1)::text, 12, '0'))::uuid, "
            "  s.at, 'redirect', 'https://shop.example.com/', "
            "  (%(referrers)s::text[])[s.i %% cardinality(%(referrers)s::text[]) + 1], %(agent)s, "
            "  substr(md5('ip' || (s.i %% 50000)), 1, 32), '{}', '{}', false, '' "
            "FROM (SELECT i, md5(%(salt)s || i) AS h, (i + i / %(visitors)s) %% %(targets)s + 1 AS k, "
            "             %(since)s::timestamptz + (%(until)s::timestamptz - %(since)s::timestamptz) * (i::float8 / %(count)s) AS at "  # noqa: E501
            "      FROM generate_series(0, %(count)s - 1) AS i) AS s",
            {
                "program": program_id,
                "affiliates": [a for a, _ in targets],
                "links": [link for _, link in targets],
                "targets": len(targets),
                "visitors": visitors,
                "referrers": list(referrers),
                "agent": BROWSER_AGENT,
                "salt": secrets.token_hex(4),
                "since": since,
                "until": until,
                "count": count,
            },
        )


def _analyze(*tables: str) -> None:
    # Bulk-loaded tables get planner statistics at once, as autovacuum would give them soon after.
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def _payouts_data(tenant: Any, double: Any, *, affiliates: int, amount_minor: int) -> Any:
    """A program and `affiliates` approved affiliates, each owed one approved commission of
    `amount_minor` (above the threshold), each with an Express account onboarded at the double
    and mapped to it; the ledger funded for all of them. Bulk inserts, and the double's accounts
    made through its state in process (10,000 onboarding round trips would be most of the bench),
    exactly as `POST /v1/accounts` and `/_double/accounts/{id}/complete` make them. Call in the
    tenant's schema."""
    import uuid

    from django.utils import timezone

    from accounts.models import User
    from affiliates import services
    from affiliates.models import Affiliate, Commission, Conversion
    from billing import services as billing_services
    from billing.connect.models import ConnectedAccount
    from billing.models import LedgerEntry
    from devtools.stripe_double.state import RequestInfo

    program = services.program_create(name="Bench program", slug="bench", payout_threshold_minor=1000)
    now = timezone.now()
    users = User.objects.bulk_create(
        [User(email=f"payee{i}@bench.test", role=User.Role.AFFILIATE, password="!") for i in range(affiliates)],
        batch_size=2000,
    )
    members = Affiliate.objects.bulk_create(
        [
            Affiliate(program=program, user=u, status=Affiliate.Status.APPROVED, code=f"payee{i}")
            for i, u in enumerate(users)
        ],
        batch_size=2000,
    )
    conversions = Conversion.objects.bulk_create(
        [
            Conversion(
                program=program,
                external_id=f"order-{i}",
                event_type="purchase",
                amount_minor=amount_minor * 10,
                currency="USD",
                occurred_at=now - timedelta(days=40),
            )
            for i in range(affiliates)
        ],
        batch_size=2000,
    )
    Commission.objects.bulk_create(
        [
            Commission(
                program=program,
                conversion=c,
                affiliate=a,
                base_minor=amount_minor * 10,
                original_minor=amount_minor,
                amount_minor=amount_minor,
                currency="USD",
                status=Commission.Status.APPROVED,
                approvable_at=now - timedelta(days=10),
            )
            for c, a in zip(conversions, members, strict=True)
        ],
        batch_size=2000,
    )
    accounts = []
    for member in members:
        account = double.state.account_create(
            {
                "type": "express",
                "country": "US",
                "email": member.user.email,
                "metadata": {"tenant": tenant.schema_name, "affiliate_id": str(member.pk)},
                "capabilities": {"transfers": {"requested": "true"}},
            },
            RequestInfo(),
        )
        double.state.account_complete(account["id"])
        accounts.append(
            ConnectedAccount(
                stripe_id=account["id"],
                tenant=tenant,
                affiliate_id=member.pk,
                country="US",
                details_submitted=True,
                payouts_enabled=True,
                transfers=ConnectedAccount.Transfers.ACTIVE,
                synced_at=int(time.time()),
            )
        )
    ConnectedAccount.objects.bulk_create(accounts, batch_size=2000)
    billing_services.ledger_post(
        kind=LedgerEntry.Kind.FUNDING,
        currency="USD",
        amount_minor=affiliates * amount_minor,
        reference=f"bench:{uuid.uuid4()}",
        memo="Bench funding",
    )
    _analyze("affiliates_commission", "affiliates_affiliate", "billing_connect_connectedaccount")
    return program


def _probe(port: int, host: str, method: str, path: str, headers: dict[str, str], body: str | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


# --- the benchmarks --------------------------------------------------------------------------


def bench_routing(seconds: int = 10, connections: int = 16, rounds: int = 4) -> None:
    _ensure_wrk()
    _platform_setup()
    slug = "bench-routing"
    subprocess.run(
        [PY, "-m", "devtools.demo_tenant", "--slug", slug, "--email", "owner@bench-routing.test"], cwd=ROOT, check=True
    )
    env = _production_env()
    plain_env, plain_extra = _untenanted(env)
    hosts = {"tenant": f"{slug}.localhost", "plain": "localhost"}
    results: dict[str, list[dict[str, Any]]] = {"tenant": [], "plain": []}
    with (
        _gunicorn(env, hosts["tenant"]) as tenant_port,
        _gunicorn(plain_env, hosts["plain"], plain_extra) as plain_port,
    ):
        ports = {"tenant": tenant_port, "plain": plain_port}
        for name in hosts:
            _wrk(ports[name], hosts[name], 2, connections)  # warm-up: connections, caches
        for round_number in range(rounds):
            # Alternate which server goes first, so neither always runs on a warmer machine.
            order = list(hosts) if round_number % 2 == 0 else list(reversed(hosts))
            for name in order:
                results[name].append(_wrk(ports[name], hosts[name], seconds, connections))
                print(name, results[name][-1], flush=True)

    def mean(name: str, key: str) -> float:
        return _mean(results[name], key)

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


def _drain_capacity(code: str, backlog: int = 20_000) -> float:
    """Clicks per second `tracking.clicks_drain` moves from a full buffer into PostgreSQL, with
    nothing else running: whether the drain or the redirect limits stored clicks. Call in the
    tenant's schema after the load (the Celery worker stopped), with the buffer empty."""
    from affiliates import tracking

    target = tracking.target_resolve(code=code)
    for i in range(backlog):  # new visitors from distinct addresses, as under load
        tracking.click_record(
            target=target, visitor_id=None, ip=f"10.200.{i // 256}.{i % 256}", user_agent=BROWSER_AGENT
        )
    started = time.perf_counter()
    moved = 0
    while moved < backlog:
        drained = tracking.clicks_drain()
        if not drained:
            break
        moved += drained
    return round(moved / (time.perf_counter() - started), 1)


def bench_clicks(seconds: int = 10, connections: int = 16, rounds: int = 3, drain_timeout: float = 120) -> None:
    _ensure_wrk()
    _platform_setup()
    _setup_django()
    import redis
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from affiliates import tracking
    from affiliates.models import Click, DailyStat

    client = redis.Redis.from_url(settings.REDIS_URL)
    with _bench_tenant("clicks") as (tenant, owner):
        with tenant_context(tenant):
            _program, (affiliate,) = _program_with_affiliates(owner, 1)
        stream = tracking.stream_key(tenant.schema_name)
        host = _host(tenant)

        def stored() -> int:
            with tenant_context(tenant):
                return Click.objects.count()

        def drained(timeout: float) -> float:
            """Wait until the buffer is empty and the row count settles; return the seconds waited."""
            started = time.monotonic()
            last = -1
            while time.monotonic() - started < timeout:
                now = stored()
                if client.xlen(stream) == 0 and now == last:
                    return time.monotonic() - started
                last = now
                time.sleep(0.5)
            left = client.xlen(stream)
            raise RuntimeError(f"{left} clicks still buffered after {timeout:.0f}s: is the drain running?")

        # NUM_PROXIES=1: client_ip() takes the visitor's address from X-Forwarded-For, which
        # wrk_requests.lua varies per request (see there); CELERY_QUEUE: this run's own queue.
        env = _production_env(NUM_PROXIES="1", CELERY_QUEUE=f"bench-{tenant.slug}")
        bare_env, bare_extra = _untenanted(env)
        loads = {
            "clicks": {"host": host, "path": f"/r/{affiliate.code}"},
            "bare": {"host": "localhost", "path": "/bare302"},
        }
        runs: dict[str, list[dict[str, Any]]] = {"clicks": [], "bare": []}
        all_click_runs: list[dict[str, Any]] = []  # warm-up included: every click must reach the table
        backlog_max = 0
        with (
            _celery_worker_and_beat(env),
            _gunicorn(env, host) as click_port,
            _gunicorn(bare_env, "localhost", bare_extra) as bare_port,
        ):
            ports = {"clicks": click_port, "bare": bare_port}

            def load(name: str, duration: int) -> dict[str, Any]:
                nonlocal backlog_max
                stop = threading.Event()

                def sample() -> None:  # how far the drain falls behind while clicks arrive
                    nonlocal backlog_max
                    while not stop.wait(0.25):
                        backlog_max = max(backlog_max, client.xlen(stream))

                sampler = threading.Thread(target=sample, daemon=True)
                before = stored() if name == "clicks" else 0
                if name == "clicks":
                    sampler.start()
                result = _wrk(
                    ports[name],
                    loads[name]["host"],
                    duration,
                    connections,
                    path=loads[name]["path"],
                    threads=2,
                    headers=(f"User-Agent: {BROWSER_AGENT}",),
                    script_args=["302", "visitors"],
                )
                stop.set()
                if name == "clicks":
                    sampler.join()
                    all_click_runs.append(result)
                    # Rows committed while the load ran: the drain's pace under load, not after it.
                    result["stored_during"] = stored() - before
                if result["unexpected"] == result["requests"]:
                    raise RuntimeError(f"no 302 from {loads[name]['path']}: {result['unexpected_sample']}")
                return result

            for name in loads:
                load(name, 2)  # warm-up: connections, caches, the Lua script's first load
            # The drain must be running before anything is measured (the worker needs a few seconds).
            drained(drain_timeout)
            for round_number in range(rounds):
                order = list(loads) if round_number % 2 == 0 else list(reversed(loads))
                for name in order:
                    runs[name].append(load(name, seconds))
                    print(name, {k: v for k, v in runs[name][-1].items() if k != "unexpected_sample"}, flush=True)
            drain_tail = drained(drain_timeout)
        clicks_stored = stored()
        with tenant_context(tenant):
            flagged = Click.objects.exclude(flagged="").count()
            rollup_clicks = sum(DailyStat.objects.values_list("clicks", flat=True))
            drain_only = _drain_capacity(affiliate.code)

    requests_sent = sum(r["requests"] - r["unexpected"] for r in all_click_runs)
    load_seconds = sum(r["seconds"] for r in all_click_runs)
    stored_per_s = round(clicks_stored / load_seconds, 1)
    redirects = _mean(runs["clicks"], "rps")
    bare = _mean(runs["bare"], "rps")
    p99 = _mean(runs["clicks"], "p99_ms")
    ratio = round(redirects / bare, 3)
    pace = round(statistics.mean(r["stored_during"] / r["seconds"] for r in runs["clicks"]), 1)
    write_results(
        "clicks",
        {
            **_target("stored_clicks_per_s", stored_per_s, stored_per_s >= 1500, ">= 1500"),
            "redirects_per_s": redirects,
            "p50_ms": _mean(runs["clicks"], "p50_ms"),
            **_target("p99_ms", p99, p99 < 25, "< 25"),
            "bare_302_per_s": bare,
            "bare_302_p50_ms": _mean(runs["bare"], "p50_ms"),
            "bare_302_p99_ms": _mean(runs["bare"], "p99_ms"),
            **_target("ratio_to_bare", ratio, ratio >= 0.5, ">= 0.5"),
            "requests_sent": requests_sent,
            "clicks_stored": clicks_stored,
            "clicks_lost": requests_sent - clicks_stored,
            "clicks_flagged": flagged,
            "rollup_clicks": rollup_clicks,
            "non_302": sum(r["unexpected"] for r in all_click_runs),
            "socket_errors": sum(r["socket_errors"] for r in all_click_runs),
            "stored_during_load_per_s": pace,
            "stream_backlog_max": backlog_max,
            "drain_only_per_s": drain_only,
            "other_load_cores": _mean(runs["clicks"] + runs["bare"], "other_load_cores"),
            "drain_tail_s": round(drain_tail, 1),
            "seconds_per_round": seconds,
            "rounds": rounds,
            "connections": connections,
            "gunicorn_workers": WORKERS,
        },
        _prose(f"""
            `GET /r/<code>` on a tenant host vs. a bare Django 302 (no database or Redis work, no tenant
            routing: tests/bench/untenanted_urls.py), both served by gunicorn (deploy/gunicorn.conf.py, {WORKERS}
            sync workers, production settings); wrk (2 threads, {connections} connections, browser User-Agent, no
            cookies, so every request is a new visitor, and a distinct X-Forwarded-For per request with
            NUM_PROXIES=1, so no click is flood-flagged) on loopback; rounds interleaved with alternating order;
            rates and latencies are means over the measured rounds. Clicks go to the Redis stream and are drained
            into PostgreSQL by a real Celery worker (concurrency 2) and beat (`drain-clicks` every second), on
            the same 2 cores. `requests_sent`: every 302 wrk received (2 s warm-up included); `clicks_stored`:
            rows once the buffer emptied (`drain_tail_s` after the load); `stored_clicks_per_s` = clicks_stored /
            seconds of click load; `stored_during_load_per_s`: rows committed while a round ran / its seconds
            (the drain's pace under load); `drain_only_per_s`: afterwards, worker stopped, 20,000 clicks
            buffered in process and drained by `tracking.clicks_drain` alone (what the drain can take);
            `clicks_lost` may be slightly negative (requests in flight when wrk stops are served but not
            counted); `other_load_cores`: CPU used by other processes on the machine during the rounds (the
            figures are depressed when it is not near 0).
        """),
    )


def bench_conversions(
    seconds: int = 15, connections: int = 8, affiliates: int = 20, clicks: int = 10_000, visitors: int = 2_000
) -> None:
    _ensure_wrk()
    _platform_setup()
    _setup_django()
    from django.db.models import Count
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from affiliates import services
    from affiliates.models import Click, Commission, Conversion, ConversionCredit, Link

    with _bench_tenant("conversions") as (tenant, owner):
        with tenant_context(tenant):
            program, members = _program_with_affiliates(owner, affiliates, rule_percent="10")
            links = dict(Link.objects.filter(slug="").values_list("affiliate_id", "id"))
            now = timezone.now()
            _clicks_insert(
                program_id=program.id,
                targets=[(a.id, links[a.id]) for a in members],
                count=clicks,
                visitors=visitors,
                since=now - timedelta(days=20),
                until=now - timedelta(minutes=1),
            )
            _analyze("affiliates_click")
            window_start = now - timedelta(days=program.cookie_window_days)
            in_window = Click.objects.filter(created_at__gte=window_start).count()
            key = services.api_key_create(name="bench", scopes=["conversions:write"], by=owner).secret
        host = _host(tenant)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        run_id = secrets.token_hex(3)
        with _gunicorn(_production_env(CELERY_QUEUE=f"bench-{tenant.slug}"), host) as port:
            status, body = _probe(
                port,
                host,
                "POST",
                "/api/v1/conversions",
                headers,
                json.dumps(
                    {
                        "external_id": f"probe-{run_id}",
                        "event_type": "purchase",
                        "amount": "49.90",
                        "currency": "USD",
                        "visitor_id": "00000000-0000-4000-8000-000000000001",
                        "customer_id": f"probe-{run_id}",
                    }
                ),
            )
            if status != 201:
                raise RuntimeError(f"POST /api/v1/conversions answered {status} (expected 201): {body[:500]}")

            def load(duration: int, tag: str) -> dict[str, Any]:
                return _wrk(
                    port,
                    host,
                    duration,
                    connections,
                    path="/api/v1/conversions",
                    threads=2,
                    headers=tuple(f"{k}: {v}" for k, v in headers.items()),
                    script_args=["201", "conversions", f"{run_id}{tag}", str(visitors)],
                )

            load(3, "w")  # warm-up: connections, caches
            result = load(seconds, "m")
            print(result, flush=True)
        # This machine's speed drifts by half within hours; a bare Django 302 measured right after
        # (as in the clicks benchmark) says how fast it was during this run.
        bare_env, bare_extra = _untenanted(_production_env())
        with _gunicorn(bare_env, "localhost", bare_extra) as bare_port:
            _wrk(bare_port, "localhost", 2, 16, path="/bare302")
            bare = _wrk(bare_port, "localhost", 10, 16, path="/bare302")
            print("bare", bare, flush=True)
        with tenant_context(tenant):
            recorded = Conversion.objects.count()
            credited = Conversion.objects.annotate(n=Count("credits")).filter(n__gt=0).count()
            commissions = Commission.objects.count()
            credits = ConversionCredit.objects.count()

    rate = round(result["rps"], 1)
    p99 = round(result["p99_ms"], 2)
    write_results(
        "conversions",
        {
            **_target("conversions_per_s", rate, rate >= 300, ">= 300"),
            "p50_ms": round(result["p50_ms"], 2),
            **_target("p99_ms", p99, p99 < 50, "< 50"),
            "requests": result["requests"],
            "non_201": result["unexpected"],
            "non_201_sample": result["unexpected_sample"][:200],
            "socket_errors": result["socket_errors"],
            "clicks_in_window": in_window,
            "other_load_cores": result["other_load_cores"],
            "visitors": visitors,
            "affiliates": affiliates,
            "conversions_recorded": recorded,
            "conversions_credited": credited,
            "credits": credits,
            "commissions": commissions,
            "seconds": seconds,
            "connections": connections,
            "gunicorn_workers": WORKERS,
            "bare_302_per_s": round(bare["rps"], 1),
        },
        "`POST /api/v1/conversions` (API key with `conversions:write`, JSON purchase of 49.90 USD, a unique "
        "external id and customer id per request, the visitor one of "
        f"{visitors:,} who made {clicks:,} clicks over the last 20 days on {affiliates} approved affiliates, "
        f"10 % rule, last-click attribution) served by gunicorn (deploy/gunicorn.conf.py, {WORKERS} sync workers, "
        f"production settings); wrk (2 threads, {connections} connections) on loopback for {seconds} s after a "
        "3 s warm-up. Clicks were inserted with SQL, not through the tracker, and nothing is buffered in Redis "
        "(each conversion's flush finds an empty stream). `conversions_recorded` includes the warm-up and one "
        "probe; `conversions_credited` is how many found a click to credit. `bare_302_per_s`: a bare Django 302 "
        "(no database or Redis work; the clicks benchmark's baseline) under the same server setup and wrk "
        "(1 thread, 16 connections), measured right after, for the machine's speed during this run.",
    )


def _stats_data(program: Any, affiliate: Any, links: list[int], *, clicks: int, conversions: int, days: int) -> None:
    """Raw rows with SQL and bulk inserts, then the daily rollups rebuilt from them with SQL
    aggregates, the same figures `affiliates.rollups` would have added up event by event."""
    from django.db import connection
    from django.utils import timezone

    from affiliates.models import Commission, Conversion, ConversionCredit

    now = timezone.now()
    since = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    referrers = (
        "",
        "https://news.example.net/story",
        "https://blog.example.org/review",
        "https://www.google.com/",
        "https://t.co/abc",
        "https://forum.example.com/thread/1",
    )
    _clicks_insert(
        program_id=program.id,
        targets=[(affiliate.id, link) for link in links],
        count=clicks,
        visitors=clicks // 4,
        since=since,
        until=now,
        referrers=referrers,
    )
    rule = program.rules.first()
    span = now - since
    rows = []
    for i in range(conversions):
        at = since + span * (i / conversions)
        rows.append(
            Conversion(
                program=program,
                external_id=f"order-{i}",
                event_type="purchase",
                amount_minor=4990,
                currency="USD",
                occurred_at=at,
                created_at=at,
                attribution={"source": "clicks"},
            )
        )
    created = Conversion.objects.bulk_create(rows, batch_size=2000)
    ConversionCredit.objects.bulk_create(
        [
            ConversionCredit(
                conversion=c,
                affiliate=affiliate,
                link_id=links[i % len(links)],
                weight=1,
                revenue_minor=4990,
                occurred_at=c.occurred_at,
            )
            for i, c in enumerate(created)
        ],
        batch_size=2000,
    )

    def status(at: datetime) -> str:  # older commissions have moved on, so all three columns fill
        age = (now - at).days
        return "paid" if age > 60 else "approved" if age > 30 else "pending"

    Commission.objects.bulk_create(
        [
            Commission(
                program=program,
                conversion=c,
                affiliate=affiliate,
                link_id=links[i % len(links)],
                rule=rule,
                base_minor=4990,
                original_minor=499,
                amount_minor=499,
                currency="USD",
                status=status(c.occurred_at),
                approvable_at=c.occurred_at + timedelta(days=program.hold_days),
            )
            for i, c in enumerate(created)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO affiliates_dailystat (date, program_id, affiliate_id, link_id, clicks, unique_visitors, "
            "  conversions, revenue_minor, commission_pending_minor, commission_approved_minor, "
            "  commission_paid_minor) "
            "SELECT day, program_id, affiliate_id, link_id, sum(clicks), sum(uv), sum(conv), sum(rev), sum(pending), "
            "       sum(approved), sum(paid) FROM ("
            # unique_visitors: distinct visitors per day and link, as the tracker's per-day sets count them
            "  SELECT (created_at AT TIME ZONE 'UTC')::date AS day, program_id, affiliate_id, link_id, "
            "         count(*) AS clicks, count(DISTINCT visitor_id) AS uv, 0 AS conv, 0 AS rev, 0 AS pending, "
            "         0 AS approved, 0 AS paid "
            "  FROM affiliates_click WHERE flagged = '' GROUP BY 1, 2, 3, 4 "
            "  UNION ALL "
            "  SELECT (cr.occurred_at AT TIME ZONE 'UTC')::date, c.program_id, cr.affiliate_id, cr.link_id, 0, 0, "
            "         count(*), sum(cr.revenue_minor), 0, 0, 0 "
            "  FROM affiliates_conversioncredit cr JOIN affiliates_conversion c ON c.id = cr.conversion_id "
            "  GROUP BY 1, 2, 3, 4 "
            "  UNION ALL "
            "  SELECT (c.occurred_at AT TIME ZONE 'UTC')::date, m.program_id, m.affiliate_id, m.link_id, 0, 0, 0, 0, "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'pending'), "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'approved'), "
            "         sum(m.amount_minor) FILTER (WHERE m.status = 'paid') "
            "  FROM affiliates_commission m JOIN affiliates_conversion c ON c.id = m.conversion_id "
            "  GROUP BY 1, 2, 3, 4"
            ") AS parts GROUP BY 1, 2, 3, 4"
        )
        cursor.execute(
            "INSERT INTO affiliates_dailysource (date, program_id, affiliate_id, source, clicks) "
            "SELECT (created_at AT TIME ZONE 'UTC')::date, program_id, affiliate_id, "
            "       coalesce(substring(referrer FROM '^[a-z]+://([^/:?#]+)'), ''), count(*) "
            "FROM affiliates_click WHERE flagged = '' GROUP BY 1, 2, 3, 4"
        )
    _analyze(
        "affiliates_click",
        "affiliates_conversion",
        "affiliates_conversioncredit",
        "affiliates_commission",
        "affiliates_dailystat",
        "affiliates_dailysource",
    )


def bench_stats(
    requests: int = 200, warmups: int = 10, clicks: int = 1_000_000, conversions: int = 10_000, days: int = 90
) -> None:
    _platform_setup()
    _setup_django()
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from affiliates import selectors, services
    from affiliates.models import Click, Conversion, DailySource, DailyStat

    with _bench_tenant("stats") as (tenant, owner):
        with tenant_context(tenant):
            program, (affiliate,) = _program_with_affiliates(owner, 1, rule_percent="10")
            # Five links, so the rollups hold a row per day and link and "top links" has work to do.
            links = [affiliate.links.get(slug="").id] + [
                services.link_create(affiliate=affiliate, slug=f"campaign-{n}").id for n in range(1, 5)
            ]
            started = time.perf_counter()
            _stats_data(program, affiliate, links, clicks=clicks, conversions=conversions, days=days)
            load_s = time.perf_counter() - started
            date_to = timezone.now().date()
            date_from = date_to - timedelta(days=days - 1)
            in_range = {"created_at__date__gte": date_from, "created_at__date__lte": date_to}
            clicks_in_range = Click.objects.filter(**in_range).count()
            conversions_in_range = Conversion.objects.filter(
                occurred_at__date__gte=date_from, occurred_at__date__lte=date_to
            ).count()
            rollup_rows = DailyStat.objects.count() + DailySource.objects.count()
            # The selector alone, in this process: how much of a request is the queries themselves.
            selector_times = []
            for n in range(warmups + 50):
                t0 = time.perf_counter()
                selectors.stats(date_from=date_from, date_to=date_to, affiliate_ids=[affiliate.id])
                if n >= warmups:
                    selector_times.append((time.perf_counter() - t0) * 1000)
            key = services.api_key_create(name="bench", scopes=["read"], by=owner).secret
        host = _host(tenant)
        path = f"/api/v1/stats?affiliate={affiliate.id}&date_from={date_from}&date_to={date_to}"
        with _gunicorn(_production_env(CELERY_QUEUE=f"bench-{tenant.slug}"), host) as port:
            # Sequential requests on one keep-alive connection: the latency of one dashboard load.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            times = []
            body = ""
            meter: dict[str, Any] = {}
            with _other_load(meter):
                for n in range(warmups + requests):
                    t0 = time.perf_counter()
                    conn.request("GET", path, headers={"Host": host, "Authorization": f"Bearer {key}"})
                    response = conn.getresponse()
                    body = response.read().decode(errors="replace")
                    elapsed = (time.perf_counter() - t0) * 1000
                    if response.status != 200:
                        raise RuntimeError(f"GET {path} answered {response.status}: {body[:500]}")
                    if n >= warmups:
                        times.append(elapsed)
            conn.close()
        totals = json.loads(body)["totals"]

    median = round(statistics.median(times), 2)
    write_results(
        "stats",
        {
            **_target("median_ms", median, median < 50, "< 50"),
            "p95_ms": round(_percentile(times, 95), 2),
            "p99_ms": round(_percentile(times, 99), 2),
            "max_ms": round(max(times), 2),
            "selector_median_ms": round(statistics.median(selector_times), 2),
            "clicks_in_range": clicks_in_range,
            "conversions_in_range": conversions_in_range,
            "api_total_clicks": totals["clicks"],
            "api_total_conversions": totals["conversions"],
            "rollup_rows": rollup_rows,
            "other_load_cores": meter["other_load_cores"],
            "days": days,
            "requests": requests,
            "data_load_s": round(load_s, 1),
        },
        f"`GET /api/v1/stats?affiliate=..&date_from=..&date_to=..` ({days} days) with a `read` API key, served "
        f"by gunicorn (deploy/gunicorn.conf.py, {WORKERS} sync workers, production settings); "
        f"{requests} sequential requests on one keep-alive connection after {warmups} warm-ups, timed by the "
        f"client. One affiliate with five links, {clicks:,} clicks and {conversions:,} conversions (with credits "
        "and commissions) spread evenly over the range, inserted with SQL; the daily rollups (`DailyStat`, "
        "`DailySource`) rebuilt from them with SQL aggregates (the endpoint reads only rollups); tables "
        "ANALYZEd after the load. `selector_median_ms` is `affiliates.selectors.stats` alone, in process. "
        "`api_total_*` are the totals the endpoint returned (they must equal the rows in range).",
    )


@contextlib.contextmanager
def _celery_workers(env: dict[str, str], *, concurrency: int, timeout: float = 60) -> Iterator[None]:
    """A Celery worker (prefork, `concurrency` processes) on this run's queue (CELERY_QUEUE in
    `env`), yielding once it answers a ping."""
    from config.celery import app

    worker = subprocess.Popen(
        [
            PY,
            "-m",
            "celery",
            "--quiet",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(concurrency),
            "-Q",
            env["CELERY_QUEUE"],
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the Celery worker did not start")
        yield
    finally:
        _stop(worker, timeout=60)


def bench_payouts(
    affiliates: int = 10_000, latency_ms: int = 50, amount_minor: int = 2500, timeout: float = 900
) -> None:
    _platform_setup()
    _setup_django()
    from django.test import override_settings
    from django_tenants.utils import tenant_context

    from billing import gateway, payouts, reconcile
    from billing.connect.models import ConnectedAccount
    from billing.models import PayoutItem, PayoutRun
    from config.celery import app
    from devtools.stripe_double import running

    concurrency = int(os.environ.get("BENCH_PAYOUT_CONCURRENCY", "4"))
    key = "sk_test_double_bench"
    # The double in this process (its server threads; this process otherwise only polls).
    with running() as double, _bench_tenant("payouts") as (tenant, _owner):
        queue = f"bench-{tenant.slug}"
        app.conf.task_default_queue = queue  # the run is queued from here, on commit
        # The double is refused in production (config.settings), so the worker runs the
        # development profile with DEBUG off, as `make run` does apart from DEBUG.
        env = {
            **os.environ,
            "DJANGO_ENV": "development",
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "STRIPE_SECRET_KEY": key,
            "STRIPE_API_BASE": double.url,
            "CELERY_QUEUE": queue,
        }
        try:
            started = time.perf_counter()
            with tenant_context(tenant):
                program = _payouts_data(tenant, double, affiliates=affiliates, amount_minor=amount_minor)
            setup_s = time.perf_counter() - started
            print(f"data for {affiliates:,} affiliates in {setup_s:.1f}s", flush=True)
            double.faults(latency_ms=latency_ms)
            meter: dict[str, Any] = {}
            with _celery_workers(env, concurrency=concurrency), _other_load(meter):
                _, ours_before = _cpu_seconds()
                started = time.perf_counter()
                with tenant_context(tenant):
                    run = payouts.payout_run_create(program=program)
                    created_s = time.perf_counter() - started
                    deadline = time.monotonic() + timeout
                    while PayoutRun.objects.get(pk=run.pk).status != PayoutRun.Status.DONE:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the run was not done after {timeout:.0f}s")
                        time.sleep(0.2)
                    seconds = time.perf_counter() - started
                # CPU of the worker, its PostgreSQL backends and this process (the double).
                cpu_s = _cpu_seconds()[1] - ours_before
            print(f"run done in {seconds:.1f}s (made in {created_s:.1f}s)", flush=True)
            double.faults(latency_ms=0)
            transfers = double.state.summary()["transfers"]
            by_item: dict[tuple, int] = {}
            for transfer in transfers:
                metadata = transfer["metadata"]
                ident = (metadata.get("tenant"), metadata.get("run"), metadata.get("item"))
                by_item[ident] = by_item.get(ident, 0) + 1
            with (
                tenant_context(tenant),
                override_settings(STRIPE_SECRET_KEY=key, STRIPE_API_BASE=double.url, STRIPE_TIMEOUT_SECONDS=30.0),
            ):
                gateway._client.cache_clear()
                items = PayoutItem.objects.filter(run=run).count()
                paid = PayoutItem.objects.filter(run=run, status=PayoutItem.Status.PAID).count()
                attempts = sum(PayoutItem.objects.filter(run=run).values_list("attempts", flat=True))
                differences = reconcile.differences(transfers=reconcile.stripe_transfers())
            gateway._client.cache_clear()
        finally:
            ConnectedAccount.objects.filter(tenant=tenant).delete()  # public rows that point at the tenant
            _redis_forget(f"bench-{tenant.slug}")

    duplicates = sum(n - 1 for n in by_item.values())
    # Exactly once is a check, not a figure: a run that pays anyone twice (or misses anyone) fails.
    ok = len(transfers) == items == paid == affiliates and duplicates == 0 and not differences
    write_results(
        "payouts",
        {
            "affiliates": affiliates,
            **_target("seconds", round(seconds, 1), seconds < 60, "< 60"),
            "items": items,
            "items_paid": paid,
            "transfers_at_stripe": len(transfers),
            "duplicate_transfers": duplicates,
            "reconcile_differences": len(differences),
            "attempts": attempts,
            "stripe_latency_ms": latency_ms,
            "items_per_s": round(items / seconds, 1),
            "run_create_s": round(created_s, 1),
            "worker_pool": "prefork",
            "worker_concurrency": concurrency,
            "send_threads_per_process": payouts.SEND_THREADS,
            "batch_size": payouts.BATCH,
            "cpu_ms_per_item": round(cpu_s * 1000 / max(items, 1), 2),
            "cpu_cores_used": round(cpu_s / seconds, 2),
            "other_load_cores": meter["other_load_cores"],
            "data_setup_s": round(setup_s, 1),
            "exactly_once": "yes" if ok else "NO",
        },
        _prose(f"""
            One payout run for {affiliates:,} approved affiliates, each owed one approved commission of
            {amount_minor / 100:.2f} USD (threshold 10.00) and holding an onboarded Express account at the
            local Stripe double (run in the bench process, {latency_ms} ms added to every API call), the ledger
            funded for all of them. Timed from `payout_run_create` (staff's click: items made, queued on commit)
            until the run is `done`, sent by a real Celery worker (prefork, {concurrency} processes, on this run's
            own queue): the run task fans out one task per batch of {payouts.BATCH} items; each batch is reserved,
            claimed and recorded in one transaction each, its transfers sent {payouts.SEND_THREADS} at a time by
            threads. Afterwards every transfer at the double is counted and grouped by the (tenant, run, item)
            in its metadata (`duplicate_transfers`: transfers beyond the first per item), and
            `billing.reconcile` compares items, ledger and transfers (`reconcile_differences`). Bulk inserts and
            the double's state API make the data (`data_setup_s`, not timed). `cpu_ms_per_item`: CPU the
            worker, its PostgreSQL backends and this process (the double) used per item while the run was
            sent (`cpu_cores_used`: the same per second of the run). `other_load_cores`: CPU other
            processes on this 2-core machine used meanwhile (other sessions' tests): figures are depressed when
            it is not near 0.
        """),
    )
    if not ok:
        raise RuntimeError("payouts: not every item was paid exactly once (see the figures above)")


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
