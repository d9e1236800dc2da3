#!/usr/bin/env bash
# `pg_ctl restart` on `make run`'s embedded PostgreSQL (issue 14, items 1 and 2): every
# connection of web, worker and beat is cut and the server comes back with the options it was
# started with (pg_ctl reads them from postmaster.opts). Run it from another terminal while
# `make run` is up; README.md in this folder says what to watch. PGDATA overrides the data folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
PGDATA="${PGDATA:-.data/postgres}" .venv/bin/python - <<'PY'
import os
import subprocess

from pgserver._commands import POSTGRES_BIN_PATH

data = os.path.abspath(os.environ["PGDATA"])
# pg_ctl refuses to run as root; as root, pgserver runs the server as its own user.
user = "pgserver" if os.geteuid() == 0 else None
subprocess.run(
    [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", data, "restart", "-m", "fast", "-w", "-l", f"{data}/restart.log"],
    user=user,
    check=True,
)
print("PostgreSQL restarted")
PY
