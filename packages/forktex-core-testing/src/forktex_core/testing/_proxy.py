# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A TCP proxy that puts network faults between a client and a real server.

:class:`FaultProxy` listens on ``127.0.0.1`` and forwards every connection to one target
``host:port`` (a Postgres, Redis or S3 server, or anything else speaking TCP). While it runs,
a test switches it between modes and arms one-shot faults:

========================  ==================================================================
``pass_through()``        forward bytes both ways (the initial mode)
``black_hole()``          accept connections, never answer: bytes in both directions are held
                          (new connections are accepted but not forwarded); ``heal()`` or
                          ``pass_through()`` delivers what was held, as TCP does after a
                          partition heals
``refuse()``              new connections are refused (the port is closed, so ``connect()``
                          fails with ``ECONNREFUSED``); open connections keep working
``reset_connections()``   every open connection is aborted with a TCP RST to both sides
``set_latency(seconds)``  every chunk the server sends is delivered ``seconds`` later (order
                          kept): a request/reply round trip takes ``seconds`` longer
``drop_replies(n)``       the next ``n`` requests reach the server, their replies never reach
                          the client (see :meth:`FaultProxy.drop_replies`)
``heal()``                back to ``pass_through``, no latency, no armed drops
========================  ==================================================================

The proxy runs its own event loop in a background thread, so it serves sync clients
(redis-py, boto3, a raw socket) and async clients (asyncpg, ``redis.asyncio``) alike, and a
test may switch modes from sync or async code: each call returns once the change is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ._requests import WireProtocol, recogniser

Mode = Literal["pass_through", "black_hole", "refuse"]
AfterDrop = Literal["reset", "hang"]
Match = bytes | Callable[[bytes], bool] | None

T = TypeVar("T")

_CHUNK = 65536
# Chunks buffered per direction before the proxy stops reading (TCP back-pressure takes over).
_QUEUED_CHUNKS = 64
_CALL_TIMEOUT = 30.0
# Wire protocol by URL scheme (before any "+driver") and by service class name.
_PROTOCOLS: dict[str, WireProtocol] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "redis": "redis",
    "rediss": "redis",
    "http": "http",
    "https": "http",
    "PostgresService": "postgres",
    "RedisService": "redis",
    "S3Service": "http",
}
_DEFAULT_PORTS = {
    "postgresql": 5432,
    "postgres": 5432,
    "redis": 6379,
    "rediss": 6379,
    "http": 80,
    "https": 443,
}


class _HasAddress(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


S = TypeVar("S", bound=_HasAddress)


def _check_port(port: object, what: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{what} must be an integer port 0..65535, got {port!r}")
    return port


def _split_url(url: str) -> tuple[str, int]:
    """Host and port of a service URL (the scheme's default port when none is given)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a non-numeric or out-of-range port
        raise ValueError(f"{_hide_password(url)!r} has an invalid port") from None
    if not host:
        raise ValueError(
            f"{_hide_password(url)!r} is not a URL with a host (scheme://host:port/...)"
        )
    if port is None:
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(
                f"{_hide_password(url)!r} names no port and {parts.scheme!r} has no known "
                f"default; add :port"
            )
        port = _DEFAULT_PORTS[scheme]
    return host, port


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _addresses(host: str, port: int) -> set[tuple[str, int]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {(str(info[4][0]), port) for info in infos}


def _same_endpoint(a: tuple[str, int], b: tuple[str, int]) -> bool:
    if a[1] != b[1]:
        return False
    if a[0].lower() == b[0].lower():
        return True
    return bool(_addresses(*a) & _addresses(*b))


def _matches(match: bytes | Callable[[bytes], bool], text: bytes) -> bool:
    if callable(match):
        return bool(match(text))
    return match.lower() in text.lower()


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Abort ``writer``'s connection with a TCP RST (SO_LINGER 0), not a FIN."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One client connection and its connection to the target, pumped both ways."""

    def __init__(
        self, engine: _Engine, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.engine = engine
        self.client_reader = reader
        self.client = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.requests = recogniser(engine.protocol)
        self.pending_drop: AfterDrop | None = None  # the next reply is to be dropped
        self.silenced = False  # "hang" after a dropped reply: nothing passes any more
        self.finished = False

    async def run(self) -> None:
        engine = self.engine
        # A black-holed proxy accepts and then says nothing: not even the target is dialled.
        await engine.flowing.wait()
        try:
            up_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(engine.target_host, engine.target_port),
                engine.connect_timeout,
            )
        except (OSError, TimeoutError):
            _rst(self.client)  # the real server is unreachable: the client sees a reset
            return
        self.upstream = upstream
        await asyncio.gather(
            self._pump(self.client_reader, upstream, downstream=False),
            self._pump(up_reader, self.client, downstream=True),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, downstream: bool
    ) -> None:
        engine = self.engine
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUED_CHUNKS)

        async def read() -> None:
            # Reading runs ahead of writing so that latency delays each chunk once, not
            # once per chunk before it.
            try:
                while data := await reader.read(_CHUNK):
                    due = loop.time() + (engine.latency if downstream else 0.0)
                    await queue.put((due, data))
            except OSError:
                pass
            await queue.put(None)

        reading = asyncio.create_task(read())
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                await engine.flowing.wait()
                if self.silenced:
                    continue
                if downstream:
                    if self.pending_drop is not None and not self.requests.is_interim_reply(data):
                        then, self.pending_drop = self.pending_drop, None
                        engine.replies_dropped += 1
                        if then == "reset":
                            self.reset()
                            return
                        self.silenced = True
                        continue
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    requests = self.requests.feed(data)
                    engine.requests_seen += len(requests)
                    then_ = engine.claim_drop(requests)
                    if then_ is not None:
                        self.pending_drop = then_  # armed before the server can answer
                writer.write(data)
                await writer.drain()
            if not (downstream and self.silenced):
                writer.close()  # a silenced connection does not even pass on the server's FIN
        except OSError:
            writer.transport.abort()
        finally:
            reading.cancel()

    def reset(self) -> None:
        """RST both sides."""
        _rst(self.client)
        _rst(self.upstream)

    def close(self) -> None:
        """Close both sides without a reset (the proxy is stopping)."""
        self.client.transport.abort()
        if self.upstream is not None:
            self.upstream.transport.abort()


class _Engine:
    """The proxy's state and coroutines; lives on the proxy's event loop only."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_host: str,
        listen_port: int,
        connect_timeout: float,
        protocol: WireProtocol,
    ) -> None:
        self.protocol = protocol
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = listen_port
        self.connect_timeout = connect_timeout
        self.mode: Mode = "pass_through"
        self.latency = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.links: dict[_Link, asyncio.Task[None]] = {}
        self.accepted = 0
        self.requests_seen = 0
        self.replies_dropped = 0
        self.drops_left = 0
        self.drop_match: Match = None
        self.drop_then: AfterDrop = "reset"
        self._listener: socket.socket | None = None
        self._serving: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._placeholder: socket.socket | None = None

    def _bound_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.listen_host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"fault proxy cannot listen on {self.listen_host}:{self.port}: {exc}"
            ) from None
        return sock

    async def listen(self) -> None:
        if self._listener is not None:
            return
        sock = self._bound_socket()
        sock.listen(128)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        self._listener = sock
        self._serving = asyncio.create_task(self._serve(sock))
        # The placeholder kept the port while refusing; the listener is bound now.
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    async def _serve(self, listener: socket.socket) -> None:
        # Our own accept loop rather than asyncio.start_server: closing that server while a
        # connection is between accept() and its transport loses the connection silently.
        loop = asyncio.get_running_loop()
        while True:
            conn, _peer = await loop.sock_accept(listener)
            task = asyncio.create_task(self._handle(conn))
            self._handlers.add(task)  # the loop holds tasks weakly
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, conn: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=conn)
        await self._accept(reader, writer)

    def _stop_listening(self, *, keep_port: bool) -> None:
        if self._serving is not None:
            self._serving.cancel()
            self._serving = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if keep_port and self._placeholder is None:
            # Bound but not listening: the kernel refuses connections, the port stays ours.
            self._placeholder = self._bound_socket()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self.links[link] = task
        try:
            await link.run()
        except (OSError, asyncio.CancelledError):
            link.close()
        finally:
            self.links.pop(link, None)

    def claim_drop(self, requests: list[bytes]) -> AfterDrop | None:
        """Whether a chunk carrying ``requests`` is one of the armed drops (and count it)."""
        if self.drops_left <= 0 or not requests:
            return None
        match = self.drop_match
        if match is not None and not any(_matches(match, text) for text in requests):
            return None
        self.drops_left -= 1
        return self.drop_then

    async def set_mode(self, mode: Mode) -> None:
        if mode == "refuse":
            self._stop_listening(keep_port=True)
            self.flowing.set()
        else:
            await self.listen()
            if mode == "black_hole":
                self.flowing.clear()
            else:
                self.flowing.set()
        self.mode = mode

    async def reset_connections(self) -> int:
        links = list(self.links.items())
        for link, _task in links:
            link.reset()
        await self._settle([task for _link, task in links])
        return len(links)

    async def _settle(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def close(self) -> None:
        self._stop_listening(keep_port=False)
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        links = list(self.links.items())
        for link, _task in links:
            link.close()
        await self._settle([task for _link, task in links])


class FaultProxy:
    """A TCP proxy in front of ``host:port`` that injects network faults on demand.

    Use it as a context manager (``with`` or ``async with``), or ``start()``/``stop()``.
    Point the client at :attr:`address` — :meth:`url` rewrites a service URL for you,
    :meth:`service` a plugin service object — then switch modes while the test runs.
    In pytest, the ``forktex_fault_proxy`` fixture makes one and stops it after the test.

    Example::

        with FaultProxy.in_front_of("redis://127.0.0.1:6379/0") as proxy:
            client = redis.Redis.from_url(proxy.url("redis://127.0.0.1:6379/0"),
                                          socket_timeout=1)
            client.ping()
            proxy.black_hole()
            with pytest.raises(redis.TimeoutError):
                client.ping()
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        connect_timeout: float = 10.0,
        protocol: WireProtocol = "raw",
    ) -> None:
        if protocol not in ("postgres", "redis", "http", "raw"):
            raise ValueError(
                f"protocol must be 'postgres', 'redis', 'http' or 'raw', got {protocol!r}"
            )
        if not isinstance(host, str) or not host:
            raise ValueError(f"target host must be a non-empty string, got {host!r}")
        _check_port(port, "target port")
        if port == 0:
            raise ValueError("target port must be 1..65535, got 0")
        _check_port(listen_port, "listen_port")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self.target_host = host
        self.target_port = port
        self._listen = (listen_host, listen_port)
        self._connect_timeout = float(connect_timeout)
        self.protocol: WireProtocol = protocol
        self._engine: _Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def in_front_of(cls, target: str | tuple[str, int] | _HasAddress, **options: Any) -> FaultProxy:
        """A (not yet started) proxy for a service URL, ``"host:port"``, ``(host, port)`` or
        any object with ``host`` and ``port`` (the plugin's service objects).

        The wire protocol (see :meth:`drop_replies`) follows from a URL's scheme
        (``postgresql``, ``redis``, ``http(s)``) or the service object (``PostgresService``,
        ``RedisService``, ``S3Service``); otherwise it is ``"raw"``. ``options`` go to the
        constructor (``protocol=`` overrides the guess).

        Example::

            proxy = FaultProxy.in_front_of(forktex_postgres)          # PostgresService
            proxy = FaultProxy.in_front_of("redis://127.0.0.1:6379/0")
            proxy = FaultProxy.in_front_of("127.0.0.1:9000")
        """
        protocol: WireProtocol = "raw"
        if isinstance(target, str):
            if "://" in target:
                host, port = _split_url(target)
                scheme = urlsplit(target).scheme.split("+", 1)[0].lower()
                protocol = _PROTOCOLS.get(scheme, "raw")
            else:
                host, sep, port_text = target.rpartition(":")
                if not sep or not host or not port_text.isdigit():
                    raise ValueError(
                        f"{target!r} is neither a URL nor host:port (e.g. 127.0.0.1:5432)"
                    )
                host, port = host.strip("[]"), int(port_text)
        elif isinstance(target, tuple):
            host, port = target
        elif hasattr(target, "host") and hasattr(target, "port"):
            host, port = target.host, target.port
            protocol = _PROTOCOLS.get(type(target).__name__, "raw")
        else:
            raise TypeError(
                f"cannot put a fault proxy in front of {type(target).__name__}: pass a URL, "
                "'host:port', (host, port) or an object with host and port"
            )
        options.setdefault("protocol", protocol)
        return cls(host, port, **options)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start listening (in a background thread); returns ``self``."""
        if self._thread is not None:
            raise RuntimeError(f"{self!r} is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"forktex-fault-proxy-{self.target_port}", daemon=True
        )
        thread.start()

        async def make() -> _Engine:
            engine = _Engine(
                self.target_host,
                self.target_port,
                *self._listen,
                self._connect_timeout,
                self.protocol,
            )
            await engine.listen()
            return engine

        try:
            self._engine = asyncio.run_coroutine_threadsafe(make(), loop).result(_CALL_TIMEOUT)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop listening and close every connection; idempotent."""
        loop, thread, engine = self._loop, self._thread, self._engine
        if loop is None or thread is None or engine is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(engine.close(), loop).result(_CALL_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FaultProxy:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _running(self) -> tuple[asyncio.AbstractEventLoop, _Engine]:
        if self._loop is None or self._engine is None:
            raise RuntimeError(f"{self!r} is not started: use start() or a with block")
        return self._loop, self._engine

    def _call(self, make: Callable[[_Engine], Awaitable[T]]) -> T:
        loop, engine = self._running()
        if self._thread is threading.current_thread():
            raise RuntimeError("FaultProxy methods cannot be called from the proxy's own thread")

        async def run() -> T:
            return await make(engine)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(_CALL_TIMEOUT)

    # -- where to connect ------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address clients connect to (``127.0.0.1`` unless ``listen_host`` was given)."""
        return self._listen[0]

    @property
    def port(self) -> int:
        """The port clients connect to (known once started)."""
        return self._running()[1].port

    @property
    def address(self) -> str:
        """``host:port`` clients connect to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _check_target(self, host: str, port: int, what: str) -> None:
        if not _same_endpoint((host, port), (self.target_host, self.target_port)):
            raise ValueError(
                f"{what} points at {host}:{port}, but this proxy forwards to "
                f"{self.target_host}:{self.target_port}"
            )

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's; user, password, database,
        path and query are kept. The URL must point at the proxy's target.

        Example::

            proxy.url("postgresql://app:pw@127.0.0.1:5432/app?sslmode=disable")
            # 'postgresql://app:pw@127.0.0.1:41234/app?sslmode=disable'
        """
        host, port = _split_url(url)
        self._check_target(host, port, _hide_password(url))
        parts = urlsplit(url)
        userinfo, at, _hostport = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{self.address}"))

    def service(self, service: S) -> S:
        """A copy of a plugin service object (``PostgresService``, ``RedisService``,
        ``S3Service``) whose host and port are the proxy's.

        Example::

            through = proxy.service(forktex_postgres)
            engine = create_async_engine(through.url)
        """
        if not dataclasses.is_dataclass(service) or not hasattr(service, "host"):
            raise TypeError(
                f"proxy.service() takes a service object with host and port, got "
                f"{type(service).__name__}; use proxy.url() for a URL"
            )
        self._check_target(service.host, service.port, type(service).__name__)
        return dataclasses.replace(service, host=self.host, port=self.port)

    # -- modes and faults ------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """``"pass_through"``, ``"black_hole"`` or ``"refuse"``."""
        return self._running()[1].mode

    @property
    def latency(self) -> float:
        """Seconds each reply chunk is held back (0 = none)."""
        return self._running()[1].latency

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        return self._running()[1].accepted

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return len(self._running()[1].links)

    @property
    def requests_seen(self) -> int:
        """Requests forwarded to the server so far, as :meth:`drop_replies` counts them —
        wait on it to act while a request is in flight (see :meth:`wait_for_requests`)."""
        return self._running()[1].requests_seen

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until :attr:`requests_seen` reaches ``count``; ``TimeoutError`` naming both
        numbers after ``timeout`` seconds.

        Example::

            proxy.set_latency(30)                 # replies held back: requests in flight
            task = asyncio.create_task(conn.fetchval("select 1"))
            await asyncio.to_thread(proxy.wait_for_requests, proxy.requests_seen + 1)
            proxy.reset_connections()             # the query fails with a connection error
        """
        deadline = time.monotonic() + timeout
        while self.requests_seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self!r} saw {self.requests_seen} requests, not {count}, in {timeout} s"
                )
            time.sleep(0.005)

    @property
    def replies_dropped(self) -> int:
        """Replies dropped so far by :meth:`drop_replies`."""
        return self._running()[1].replies_dropped

    @property
    def drops_pending(self) -> int:
        """Armed drops that have not met their request yet."""
        return self._running()[1].drops_left

    def pass_through(self) -> None:
        """Forward bytes both ways; what a black hole held is delivered now. Latency and armed
        drops are kept (use :meth:`heal` to clear everything)."""
        self._call(lambda engine: engine.set_mode("pass_through"))

    def black_hole(self) -> None:
        """Accept connections but never answer: open connections stop forwarding in both
        directions, new ones are accepted and not forwarded. Bytes are held, not lost: they
        are delivered when the proxy passes traffic again (call :meth:`reset_connections`
        first to lose them)."""
        self._call(lambda engine: engine.set_mode("black_hole"))

    def refuse(self) -> None:
        """Refuse new connections (``ECONNREFUSED``); open connections keep working — add
        :meth:`reset_connections` for a server that went away."""
        self._call(lambda engine: engine.set_mode("refuse"))

    def heal(self) -> None:
        """Back to normal: pass through, no latency, no armed drops."""

        async def heal(engine: _Engine) -> None:
            engine.latency = 0.0
            engine.drops_left = 0
            await engine.set_mode("pass_through")

        self._call(heal)

    def set_latency(self, seconds: float) -> None:
        """Deliver every chunk the server sends ``seconds`` late (order kept), so each
        request/reply round trip takes ``seconds`` longer; ``0`` removes the delay.
        Client-to-server bytes are not delayed."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")

        async def apply(engine: _Engine) -> None:
            engine.latency = float(seconds)

        self._call(apply)

    def reset_connections(self) -> int:
        """Abort every open connection with a TCP RST to the client and to the server (not a
        FIN: the client sees ``ECONNRESET``). Returns how many were reset. The mode is kept,
        so new connections are served as before."""
        return self._call(lambda engine: engine.reset_connections())

    def drop_replies(
        self, count: int = 1, *, match: Match = None, then: AfterDrop = "reset"
    ) -> None:
        """Let the next ``count`` requests reach the server and lose their replies.

        The proxy forwards the request, so the server executes it (an ``INSERT`` in
        autocommit or a ``COMMIT`` is committed), and discards the first bytes the server
        sends back on that connection (an HTTP ``100 Continue`` excepted). Then:

        * ``then="reset"`` (default): that connection is aborted with a RST on both sides,
          so the client sees a connection error for a request that did succeed — the "did
          my commit happen?" case;
        * ``then="hang"``: that connection goes silent for good (nothing more passes either
          way), so the client sees its read timeout; the server's side stays open until the
          client closes.

        What counts as a request depends on :attr:`protocol` (guessed by
        :meth:`in_front_of`), read from the client's bytes on each connection:

        * ``"postgres"``: a simple ``Query`` or an extended-protocol ``Execute`` — one per
          statement run, whether it came in one chunk with its ``Parse``/``Bind`` or reuses
          a prepared statement. Start-up, authentication, prepare-only round trips and
          cancel requests never count. Its text is the statement's SQL.
        * ``"redis"``: a command other than connection set-up (``HELLO``, ``AUTH``,
          ``SELECT``, ``CLIENT``, ``READONLY``); its text the command line (``b"INCR n"``).
          A pipeline or ``MULTI``/``EXEC`` sent in one go is one request (the whole reply
          is lost).
        * ``"http"``: a chunk starting with a request line (``b"PUT /bucket/key HTTP/1.1"``).
        * ``"raw"``: every chunk the client sends.

        ``match`` restricts which requests count: ``bytes`` found in the request's text
        (case-insensitive, e.g. ``b"insert into orders"``, ``b"INCR"``, ``b"PUT "``) or a
        predicate on the text. Several requests sent together count once. Requests are
        counted across all connections; calling again replaces what is armed;
        :attr:`replies_dropped` and :attr:`drops_pending` tell what happened.

        Example::

            proxy.drop_replies(match=b"insert into orders")
            with pytest.raises(asyncpg.ConnectionDoesNotExistError):
                await conn.execute("insert into orders values ($1)", 7)
            # ... and yet the row is there
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        if then not in ("reset", "hang"):
            raise ValueError(f"then must be 'reset' or 'hang', got {then!r}")
        if isinstance(match, str):
            raise TypeError(f"match must be bytes (e.g. {match.encode()!r}) or a callable")
        if match is not None and not isinstance(match, bytes) and not callable(match):
            raise TypeError(f"match must be bytes, a callable or None, got {match!r}")

        async def arm(engine: _Engine) -> None:
            engine.drops_left, engine.drop_match, engine.drop_then = count, match, then

        self._call(arm)

    def __repr__(self) -> str:
        state = "stopped"
        if self._engine is not None and self._loop is not None:
            state = f"{self.address}, {self._engine.mode}"
        return f"FaultProxy({state} -> {self.target_host}:{self.target_port})"
