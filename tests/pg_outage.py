"""A PostgreSQL outage for one process at a time: a TCP proxy in front of the real server that a
process under test reaches its database through (its DATABASE_URL names the proxy's port).

`outage()` does to that process what a `pg_ctl restart` does: every open connection is cut
(the process sees "the connection is lost" / "server closed the connection unexpectedly" on its
next query) and, for as long as the outage lasts, every new connection is refused; then the
server answers again. Unlike a real restart it touches nobody else's connections, so it runs
against the shared test server that other pytest workers use (restarting that one would fail
their tests), and it costs nothing to set up, where a private `pgserver` needs an initdb and
the whole schema migrated into it.

    python tests/pg_outage.py --upstream /path/to/socket/dir:5432 --port 6543 --every 30 --down 5

runs it by hand in front of a PostgreSQL (see deploy/faults/README.md)."""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote


class PgOutageProxy:
    def __init__(self, *, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(256)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = threading.Event()
        self._closed = threading.Event()
        self.outages = 0
        threading.Thread(target=self._accept, name="pg-outage-accept", daemon=True).start()

    def url(self, *, database: str, user: str, application_name: str) -> str:
        """A DATABASE_URL through the proxy; the application name tells its sessions apart in
        pg_stat_activity."""
        return f"postgres://{quote(user, safe='')}@127.0.0.1:{self.port}/{database}?application_name={application_name}"

    def _upstream(self) -> socket.socket:
        if self.upstream_host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{self.upstream_host}/.s.PGSQL.{self.upstream_port}")
            return sock
        return socket.create_connection((self.upstream_host, self.upstream_port), timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()  # the server is down: the connection attempt fails
                continue
            try:
                server = self._upstream()
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._cut(source, sink)

    def _cut(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def down(self) -> None:
        """The server goes away: open connections are cut, new ones refused."""
        self.outages += 1
        self._down.set()
        with self._lock:
            socks = list(self._open)
        self._cut(*socks)

    def up(self) -> None:
        self._down.clear()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.down()
        try:
            yield
        finally:
            self.up()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="HOST:PORT or SOCKET_DIR:PORT of the real PostgreSQL")
    parser.add_argument("--port", type=int, default=6543, help="where the platform connects instead")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between outages")
    parser.add_argument("--down", type=float, default=5.0, help="seconds each outage lasts")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    proxy = PgOutageProxy(upstream_host=host, upstream_port=int(port), port=args.port)
    print(f"proxy on 127.0.0.1:{proxy.port}: an outage of {args.down} s every {args.every} s", flush=True)
    try:
        while True:
            time.sleep(args.every)
            with proxy.outage():
                print(f"outage {proxy.outages}: connections cut, new ones refused", flush=True)
                time.sleep(args.down)
            print(f"outage {proxy.outages} over", flush=True)
    except KeyboardInterrupt:
        proxy.close()


if __name__ == "__main__":
    main()
