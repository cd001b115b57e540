"""`cetgql serve --workers 2` spreads connections that open together across both workers
(cetgql/worker_sockets.py): with one shared accept queue, the first worker to wake took most of
a burst of keep-alive connections and the other idled."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import ServerProcess

CONNECTIONS = 60


async def _burst(port: int) -> None:
    """Open every connection, one after the other, before any request (as a load balancer
    filling its pool does), then send one GraphQL request on each and read the answers."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    body = b'{"query":"{ __typename }"}'
    request = (
        b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    for _, writer in streams:
        writer.write(request)
    for reader, writer in streams:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.close()


def _listening_sockets(port: int) -> list[str]:
    """The inodes of the sockets listening on ``port`` (IPv4), from /proc/net/tcp."""
    inodes = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.append(fields[9])
    return inodes


def _owners(inodes: set[str]) -> dict[int, set[str]]:
    """Which processes hold which of ``inodes`` open."""
    owners: dict[int, set[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:  # gone, or not ours to read
            continue
        held = {link[8:-1] for link in links if link.startswith("socket:[")} & inodes
        if held:
            owners[int(pid)] = held
    return owners


def test_connections_opened_together_reach_both_workers(database, settings):
    server = ServerProcess(database, settings, {"CETGQL_LOG_FORMAT": "json"}, workers=2)
    try:
        deadline = time.monotonic() + 60
        while len(_listening_sockets(server.port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the second worker may still be starting
        # Each worker listens on a socket of its own, which is what lets the kernel spread
        # connections; with uvicorn's shared socket there is one listening socket.
        listening = _listening_sockets(server.port)
        owners = _owners(set(listening))
        assert len(listening) == 2, listening
        assert len(owners) == 2 and all(len(s) == 1 for s in owners.values()), owners

        asyncio.run(_burst(server.port))

        served = Counter(
            entry["pid"]  # JSON access lines carry the worker's pid
            for entry in (
                json.loads(line) for line in server.output().splitlines() if line.startswith("{")
            )
            if entry.get("path") == "/graphql"
        )
        assert sum(served.values()) == CONNECTIONS, served
        # Spread by the kernel across two sockets: an even split give or take chance
        # (fewer than 12 of 60 on one side happens about once in 300,000 runs).
        assert len(served) == 2, served
        assert min(served.values()) >= 12, served
    finally:
        server.stop()


def test_a_worker_that_dies_is_replaced_with_a_socket_of_its_own(database, settings):
    """uvicorn's supervisor starts a new worker for one that died; it binds a socket of its
    own like the others (the parent's socket pickles as "bind a socket like me")."""
    server = ServerProcess(database, settings, workers=2)
    try:
        deadline = time.monotonic() + 60
        while len(_owners(set(_listening_sockets(server.port)))) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        before = _owners(set(_listening_sockets(server.port)))
        victim = min(before)
        os.kill(victim, signal.SIGKILL)

        while True:  # a new worker, listening on a new socket, beside the survivor
            owners = _owners(set(_listening_sockets(server.port)))
            if len(owners) == 2 and victim not in owners:
                break
            assert time.monotonic() < deadline, (before, owners, server.output())
            time.sleep(0.2)
        assert set(owners) - set(before), owners
        for _ in range(10):
            assert httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}).is_success
    finally:
        server.stop()
