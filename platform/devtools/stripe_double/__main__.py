"""`python -m devtools.stripe_double`: run the double in the foreground until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import DoubleOptions, StripeDouble
from .state import DEFAULT_API_VERSION


def _balance(value: str) -> tuple[str, int]:
    currency, sep, amount = value.partition("=")
    if not sep or not amount.isdigit():
        raise argparse.ArgumentTypeError("expected CURRENCY=CENTS, e.g. usd=100000000")
    return currency.lower(), int(amount)


def parse(argv: list[str] | None = None) -> DoubleOptions:
    parser = argparse.ArgumentParser(prog="python -m devtools.stripe_double", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", help="where events are POSTed (e.g. dj-stripe's webhook endpoint)")
    parser.add_argument("--webhook-secret", help="whsec_... secret the deliveries are signed with")
    parser.add_argument("--state-file", help="JSON file the state is kept in across restarts")
    parser.add_argument("--latency-ms", type=int, default=0, help="latency added to every /v1 call")
    parser.add_argument(
        "--balance", type=_balance, action="append", help="platform available balance, CURRENCY=CENTS (repeatable)"
    )
    parser.add_argument("--api-version", default=DEFAULT_API_VERSION, help="api_version put in events")
    parser.add_argument("--public-url", help="base of the links handed out, if not the address clients call")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if bool(args.webhook_url) != bool(args.webhook_secret):
        parser.error("--webhook-url and --webhook-secret go together")
    return DoubleOptions(
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        state_file=args.state_file,
        latency_ms=args.latency_ms,
        balance=dict(args.balance) if args.balance else None,
        api_version=args.api_version,
        public_url=args.public_url,
        log_requests=args.verbose,
    )


def main(argv: list[str] | None = None) -> None:
    double = StripeDouble(parse(argv))

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on the serving thread;
        # the rest of stop() (webhook workers, last snapshot) runs below, on the main thread.
        threading.Thread(target=double.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"Stripe double listening on {double.url} (never use it in production)", file=sys.stderr, flush=True)
    double.serve_forever()
    double.stop()


if __name__ == "__main__":
    main()
