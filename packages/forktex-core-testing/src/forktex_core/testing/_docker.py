# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""testcontainers, used only when it is installed and a Docker daemon actually answers.

testcontainers comes with the ``docker`` extra (``pip install 'forktex-core-testing[docker]'``).
It raises already in a container's constructor when there is no daemon, so
:func:`docker_available` pings first and every caller checks it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._procs import redis_ping, wait_until

POSTGRES_IMAGE = "postgres:17-alpine"
REDIS_IMAGE = "redis:7-alpine"
MINIO_IMAGE = "minio/minio:latest"


def docker_available(timeout: float = 2.0) -> bool:
    """True when testcontainers is installed and a Docker daemon answers a ping within
    ``timeout`` seconds.

    Example::

        if docker_available():
            ...  # testcontainers will work
    """
    if importlib.util.find_spec("testcontainers") is None:
        return False  # the docker extra is not installed
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=int(max(timeout, 1)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _container(image: str, port: int, **env: str) -> Any:
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_exposed_ports(port)
    for key, value in env.items():
        container = container.with_env(key, value)
    return container


def start_postgres() -> tuple[str, int, Callable[[], None]]:
    """Start a PostgreSQL container; return host, port and a stopper."""
    from testcontainers.core.waiting_utils import wait_for_logs

    container = _container(POSTGRES_IMAGE, 5432, POSTGRES_HOST_AUTH_METHOD="trust")
    container.start()
    wait_for_logs(container, "database system is ready to accept connections", timeout=60)
    host = container.get_container_host_ip()
    port = int(container.get_exposed_port(5432))
    return host, port, container.stop


def start_redis() -> tuple[str, int, Callable[[], None]]:
    """Start a Redis container; return host, port and a stopper."""
    container = _container(REDIS_IMAGE, 6379)
    container.start()
    host = container.get_container_host_ip()
    port = int(container.get_exposed_port(6379))
    wait_until(lambda: redis_ping(host, port), 60, "redis container")
    return host, port, container.stop


def start_minio(access_key: str, secret_key: str) -> tuple[str, int, Callable[[], None]]:
    """Start a MinIO container; return host, port and a stopper."""
    from testcontainers.core.waiting_utils import wait_for_logs

    container = _container(
        MINIO_IMAGE, 9000, MINIO_ROOT_USER=access_key, MINIO_ROOT_PASSWORD=secret_key
    ).with_command("server /data")
    container.start()
    wait_for_logs(container, "API:", timeout=60)
    host = container.get_container_host_ip()
    port = int(container.get_exposed_port(9000))
    return host, port, container.stop
