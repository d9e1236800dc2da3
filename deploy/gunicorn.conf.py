"""Production web server settings: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Sync workers with persistent database connections (CONN_MAX_AGE) suit a CPU-bound Django app;
the routing benchmark runs with exactly this file."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One worker more than cores: a sync worker sits idle while PostgreSQL or Redis answers (with as
# many workers as cores, a fifth of the 2 cores stayed idle under load in the redirect and the
# conversion benchmarks); a third worker on 2 cores filled that (redirects +6 %, conversions
# +4 %, lower p99), a fourth added only latency spikes (p99 over 60 ms).
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
# A sync worker serves one request at a time on one persistent database connection (CONN_MAX_AGE),
# so the web tier holds at most `workers` connections and no request pays a pool checkout. Threaded
# workers (gthread) would hold one per thread: set DATABASE_POOL_MAX_SIZE then (config.settings),
# as the threaded development server does.
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycling workers (against slow leaks) is off unless asked for: each restart re-imports
# Django, and at a thousand requests a second per worker even 10,000 means a stall every 10 s.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
