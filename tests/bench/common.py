"""What the benchmarks share: where results go and how they are written, Django set up in this
process, the servers under load (gunicorn as deployed, Celery worker and beat), wrk, the CPU other
processes used meanwhile, and the bench tenants and their data."""

from __future__ import annotations

import contextlib
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
import time
from collections.abc import Iterator
from datetime import UTC, datetime
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


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return out.stdout.strip() + ("-dirty" if dirty.strip() else "")


def write_results(name: str, figures: dict[str, object], notes: str = "") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**figures, "cores": os.cpu_count(), "commit": git_commit(), "measured_at": datetime.now(UTC).isoformat()}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in data.items())
    (RESULTS / f"{name}.md").write_text(f"# {name}\n\n{notes}\n\n| figure | value |\n|---|---|\n{rows}\n")
    print(f"\n{name}:\n| figure | value |\n|---|---|\n{rows}\n", flush=True)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def platform_setup(env: dict[str, str] | None = None) -> None:
    subprocess.run([PY, "manage.py", "platform_setup", "--verbosity", "0"], cwd=ROOT, env=env, check=True)


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def prose(text: str) -> str:
    """A paragraph written indented in the source, as one line for the results' notes."""
    return " ".join(text.split())


def with_target(name: str, value: float, ok: bool, goal: str) -> dict[str, object]:
    """A figure and, beside it, its target and whether this run met it."""
    return {name: value, f"{name}_target": f"{goal}: {'met' if ok else 'MISSED'}"}


# --- servers and load, shared by the HTTP benchmarks -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, host: str, timeout: float = 30) -> None:
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


def production_env(**extra: str) -> dict[str, str]:
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


def untenanted(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The same project without tenant routing (tests/bench/untenanted_settings.py): the baseline."""
    return {**env, "DJANGO_SETTINGS_MODULE": "untenanted_settings"}, ["--pythonpath", str(BENCH)]


def process_stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def gunicorn_serving(
    env: dict[str, str], host: str, extra: list[str] | None = None, workers: int | None = None
) -> Iterator[int]:
    """gunicorn exactly as deployed (deploy/gunicorn.conf.py: sync workers, persistent database
    connections) on a free loopback port; yields the port once `host` answers."""
    workers = workers or WORKERS
    port = free_port()
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
        wait_for(port, host)
        yield port
    finally:
        process_stop(proc)


@contextlib.contextmanager
def celery_worker_and_beat(env: dict[str, str]) -> Iterator[None]:
    """A Celery worker and beat as `make run` starts them (devtools/devenv.py), so clicks are
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
            process_stop(beat)
            process_stop(worker, timeout=60)  # a warm shutdown finishes the drain in progress


def cpu_seconds() -> tuple[float, float]:
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
def other_load(into: dict[str, Any]) -> Iterator[None]:
    """Store in into["other_load_cores"] the cores used by other processes while the block ran."""
    busy, ours = cpu_seconds()
    started = time.monotonic()
    yield
    busy_after, ours_after = cpu_seconds()
    into["other_load_cores"] = round(((busy_after - busy) - (ours_after - ours)) / (time.monotonic() - started), 2)


def wrk_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk_run(
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
    with other_load(meter):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    done = re.search(r"(\d+) requests in ([\d.]+\w+),", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    unexpected = re.search(r"^unexpected_status (\d+)", out, re.M)
    sample = re.search(r"^first_unexpected (.*)$", out, re.M)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": int(done.group(1)),
        "seconds": wrk_ms(done.group(2)) / 1000,
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "unexpected": int(unexpected.group(1)) if unexpected else 0,
        "unexpected_sample": sample.group(1) if sample else "",
        **meter,
    }
    if script_args is None and result["non_2xx_3xx"]:
        raise RuntimeError(f"{result['non_2xx_3xx']} non-2xx responses for {host}:\n{out}")
    return result


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    if not shutil.which("wrk"):
        raise SystemExit("the HTTP benchmarks need wrk (Debian/Ubuntu: apt-get install wrk)")


def runs_mean(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.mean(r[key] for r in runs), 2)


# --- tenants and data, shared by the affiliate benchmarks ------------------------------------


@contextlib.contextmanager
def bench_tenant(kind: str) -> Iterator[tuple[Any, Any]]:
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
        redis_forget(tenant.schema_name, tenant.slug)


def redis_forget(*fragments: str) -> None:
    """Delete the Redis keys naming a dropped tenant (its click stream and counters, routing
    entries, this run's Celery queue), which deleting the tenant leaves behind."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for fragment in fragments:
        for key in client.scan_iter(match=f"*{fragment}*", count=1000):
            client.delete(key)


def tenant_host(tenant: Any) -> str:
    return f"{tenant.slug}.localhost"  # PLATFORM_DOMAIN=localhost, as production_env sets


def program_with_affiliates(owner: Any, count: int, *, rule_percent: str | None = None) -> tuple[Any, list[Any]]:
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


def clicks_insert(
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


def analyze(*tables: str) -> None:
    # Bulk-loaded tables get planner statistics at once, as autovacuum would give them soon after.
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
