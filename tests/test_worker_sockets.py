"""`cetgql serve --workers 2` spreads connections that open together across both workers
(cetgql/worker_sockets.py): with one shared accept queue, the first worker to wake took most of
a burst of keep-alive connections and the other idled."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import ROOT, _free_port

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
    port = _free_port()
    env = {
        **os.environ,
        "CETGQL_DATABASE_URL": database,
        "CETGQL_SECRET_KEY": settings.secret_key,
        "CETGQL_RUN_JOBS": "0",
        "CETGQL_LOG_FORMAT": "json",  # access lines carry the worker's pid
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.NamedTemporaryFile(prefix="cetgql-workers-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cetgql.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # both workers up: a refused health check means one is not yet
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, Path(log.name).read_text()
                time.sleep(0.2)
            while len(_listening_sockets(port)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)  # the second worker may still be starting

            # Each worker listens on a socket of its own, which is what lets the kernel spread
            # connections; with uvicorn's shared socket there is one listening socket.
            listening = _listening_sockets(port)
            owners = _owners(set(listening))
            assert len(listening) == 2, listening
            assert len(owners) == 2 and all(len(s) == 1 for s in owners.values()), owners

            asyncio.run(_burst(port))

            served = Counter(
                entry["pid"]
                for entry in (
                    json.loads(line)
                    for line in Path(log.name).read_text().splitlines()
                    if line.startswith("{")
                )
                if entry.get("path") == "/graphql"
            )
            assert sum(served.values()) == CONNECTIONS, served
            # Spread by the kernel across two sockets: an even split give or take chance
            # (fewer than 12 of 60 on one side happens about once in 300,000 runs).
            assert len(served) == 2, served
            assert min(served.values()) >= 12, served
        finally:
            process.terminate()
            process.wait(timeout=20)
