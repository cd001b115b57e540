"""Several API worker processes on one port, each listening on a socket of its own.

uvicorn's ``--workers`` binds one socket in the parent and hands that same socket to every
worker, so all workers wait on one accept queue and whichever wakes first takes every
connection waiting in it. Connections that open together (a load balancer filling its
keep-alive pool, the candidates of the opening minute) then often all land on one worker
while the other idles: the overview benchmark with two workers gave 290 requests/s on some
runs and 480 on others, on the same code.

With ``SO_REUSEPORT`` each worker binds the port itself and the kernel spreads new connections
across the workers' sockets by their addresses, which is what ``nginx``'s ``reuse_port`` does.
The parent binds the port too, to hold it and to fail at once when it is taken, but never
listens on it, so no connection reaches it. uvicorn's supervisor (restarting dead workers,
signals, health checks) is used as it is: it hands the parent's socket to each worker by
pickling it, and :class:`PerWorkerSocket` pickles as "bind a socket like me", so every worker,
a restarted one too, unpickles a fresh socket of its own.
"""

from __future__ import annotations

import contextlib
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


def _bind(family: int, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class PerWorkerSocket(socket.socket):
    """The parent's socket: bound with ``SO_REUSEPORT``, never listened on; a worker that
    receives it gets a new socket bound to the same address (see the module's text)."""

    def __reduce__(self) -> tuple[object, tuple[int, tuple[str, int]]]:
        host, port = self.getsockname()[:2]
        return _bind, (int(self.family), (host, port))


class PerWorkerSocketConfig(uvicorn.Config):
    """uvicorn's configuration with the parent's socket made a :class:`PerWorkerSocket`."""

    def bind_socket(self) -> socket.socket:
        if not hasattr(socket, "SO_REUSEPORT"):  # not Linux or a BSD: uvicorn's shared socket
            return super().bind_socket()
        family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
        sock = PerWorkerSocket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            print(f"cannot listen on {self.host}:{self.port}: {error}", file=sys.stderr)
            sys.exit(STARTUP_FAILURE)
        return sock


def run(config: PerWorkerSocketConfig) -> None:
    """Serve with ``config.workers`` processes (one: in this process), as ``uvicorn.run``."""
    if config.workers > 1:
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
