# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Small process/network helpers shared by the embedded servers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_pair(offset: int, host: str = "127.0.0.1") -> int:
    """A free port ``p`` whose companion ``p + offset`` is free too (Redis Cluster's bus)."""
    for _ in range(200):
        port = free_port(host)
        if port + offset > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port + offset))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port pair (p, p+{offset}) found on {host}")


class ServerExited(RuntimeError):
    """A server process ended while we waited for it to become ready."""


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every few milliseconds until it is true or ``timeout`` passes.

    Errors from ``check`` count as "not yet", except :class:`ServerExited`, raised at once.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if check():
                return
        except ServerExited:
            raise
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def redis_ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a Redis server at ``host:port`` answers PING (raw RESP, no client needed)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def redis_pid(host: str, port: int, timeout: float = 0.5) -> int | None:
    """The process id the Redis server at ``host:port`` reports (``INFO server``)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        data = b""
        while b"process_id:" not in data or not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            return int(line.split(b":", 1)[1])
    return None


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate ``proc`` and reap it, killing it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
