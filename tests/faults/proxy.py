"""A fault-injecting TCP proxy between Redis clients and a real redis-server, for tests.

::

    client (redis-py)               Proxy, 127.0.0.1:<port>                      redis-server
    ─────────────────     ───────────────────────────────────────────────     ──────────────
    requests, pipelined ─► read each RESP request (an array of bulk strings)
                           and route it:
                             forward ─────────────────────────────────────────► runs it
                             refuse: never forwarded; the proxy answers it
                                     itself (say -OOM), in its place
                             hold:   forward it, then keep this client's later
                                     requests here until release() (or the
                                     client dies: they are dropped, never run)
    replies, in order   ◄─ each reply from Redis, then the refusals that      ◄─ replies
                           follow its request (delay_replies: later)

Every client connection gets its own upstream connection, so a fault hits one client's stream of
requests and the others' flow on. Replies keep the order of the requests: the proxy keeps, per
connection, one slot per request in flight, either "Redis answers this one" or the proxy's own
answer, and writes its own answers only after the replies of the requests sent before them. A
reply that arrives with no request in flight (pub/sub messages) is passed on as it is.

Faults are armed from the test's thread (``refuse``, ``hold``, ``delay_replies``,
``cut_connections``); the proxy runs on an asyncio loop in a thread of its own. A request matches
a fault when one of its arguments contains the fault's byte string (or a predicate says so).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

Request = list[bytes]  # a command and its arguments

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
BUSY = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n"


class Fault:
    """An armed fault: fires on the first ``times`` requests that match, then rests.

    ``triggered`` is set when it first fires; ``matched`` holds the requests it fired on.
    """

    def __init__(self, kind: str, match: Callable[[Request], bool], times: int | None, reply: bytes = b"") -> None:
        self.kind = kind  # "refuse" or "hold"
        self.match = match
        self.remaining = times  # None: every matching request
        self.reply = reply
        self.triggered = threading.Event()
        self.matched: list[Request] = []
        self._links: set[_Link] = set()  # connections this hold fault holds

    def wait(self, timeout: float) -> bool:
        return self.triggered.wait(timeout)

    @property
    def fired(self) -> int:
        return len(self.matched)


def containing(needle: bytes) -> Callable[[Request], bool]:
    return lambda request: any(needle in argument for argument in request)


class Proxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.reply_delay = 0.0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()  # guards _faults (armed from the test's thread)
        self._links: set[_Link] = set()
        self._serving: set[asyncio.Task] = set()  # one task per client connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redis-fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> "Proxy":
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", self.port, limit=1 << 20))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._shut_down())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._server = None

    async def _shut_down(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()  # its two pumps see the end of their streams, and its _serve returns
        if self._serving:
            await asyncio.wait(self._serving, timeout=5)

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------------

    def refuse(self, needle: bytes | Callable[[Request], bool], reply: bytes = OOM, times: int | None = 1) -> Fault:
        """Answer the first ``times`` matching requests with ``reply`` (a raw RESP reply) and
        never forward them."""
        return self._arm(Fault("refuse", _matcher(needle), times, reply))

    def hold(self, needle: bytes | Callable[[Request], bool], times: int | None = 1) -> Fault:
        """Forward a matching request (each of the first ``times``; None: every one), then hold
        that client's later requests until ``release(fault)``; if the client goes away first, they
        are dropped, never run."""
        return self._arm(Fault("hold", _matcher(needle), times))

    def release(self, fault: Fault) -> None:
        """Forward what ``fault`` held, in order, and stop holding."""
        self._call_soon(lambda: [link.release(fault) for link in list(fault._links)])

    def disarm(self, fault: Fault) -> None:
        with self._lock:
            fault.remaining = 0

    def delay_replies(self, seconds: float) -> None:
        """Wait ``seconds`` before passing each reply on (0: at once); the replies of a pipeline
        queue up behind each other."""
        self.reply_delay = seconds

    def cut_connections(self) -> None:
        """Drop every open connection, both sides, as a network cut would; new ones are accepted."""
        self._call_soon(lambda: [link.abort() for link in list(self._links)])

    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _fault_for(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining != 0 and fault.match(request):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    fault.matched.append(request)
                    return fault
        return None

    # -- the loop's side ------------------------------------------------------------------------

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def _call_soon(self, function: Callable[[], object]) -> None:
        done: Future = Future()

        def run() -> None:
            try:
                done.set_result(function())
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                done.set_exception(error)

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(run)
            done.result(10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        serving = asyncio.current_task()
        self._serving.add(serving)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream, limit=1 << 20)
        except OSError:
            client_writer.transport.abort()
            self._serving.discard(serving)
            return
        link = _Link(self, client_reader, client_writer, upstream_reader, upstream_writer)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            self._serving.discard(serving)


class _Link:
    """One client connection and its own connection to Redis."""

    def __init__(self, proxy: Proxy, client_reader, client_writer, upstream_reader, upstream_writer) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client_reader, client_writer
        self.upstream_reader, self.upstream_writer = upstream_reader, upstream_writer
        # One slot per request in flight, in order: None when Redis answers it, else the proxy's reply.
        self.slots: deque[bytes | None] = deque()
        self.held_by: Fault | None = None
        self.backlog: list[tuple[bytes, Request]] = []

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(self._requests()), asyncio.ensure_future(self._replies())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            self.abort()
            if self.held_by is not None:
                self.held_by._links.discard(self)

    async def _requests(self) -> None:
        try:
            while True:
                self.route(*await read_request(self.client_reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the client went away: whatever was held is dropped with it

    def route(self, raw: bytes, request: Request) -> None:
        if self.held_by is not None:
            self.backlog.append((raw, request))
            return
        fault = self.proxy._fault_for(request)
        if fault is not None and fault.kind == "refuse":
            self._answer(fault.reply)
        else:
            self.slots.append(None)
            self.upstream_writer.write(raw)
            if fault is not None:
                self.held_by = fault
                fault._links.add(self)
        if fault is not None:
            fault.triggered.set()

    def _answer(self, reply: bytes) -> None:
        if self.slots:
            self.slots.append(reply)  # after the replies of the requests before it
        else:
            self.client_writer.write(reply)

    async def _replies(self) -> None:
        try:
            while True:
                reply = await read_value(self.upstream_reader)
                if self.proxy.reply_delay:
                    await asyncio.sleep(self.proxy.reply_delay)
                if self.slots and self.slots[0] is None:
                    self.slots.popleft()
                out = [reply]
                while self.slots and self.slots[0] is not None:
                    out.append(self.slots.popleft())
                self.client_writer.write(b"".join(out))
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def release(self, fault: Fault) -> None:
        if self.held_by is not fault:
            return
        self.held_by = None
        fault._links.discard(self)
        backlog, self.backlog = self.backlog, []
        for index, (raw, request) in enumerate(backlog):
            self.route(raw, request)
            if self.held_by is not None:  # held again by another fault: keep the rest back
                self.backlog.extend(backlog[index + 1 :])
                return

    def abort(self) -> None:
        self.client_writer.transport.abort()
        self.upstream_writer.transport.abort()


def _matcher(needle: bytes | Callable[[Request], bool]) -> Callable[[Request], bool]:
    return containing(needle) if isinstance(needle, bytes) else needle


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, Request]:
    """One request: its raw bytes and its arguments. redis-py sends arrays of bulk strings; an
    inline command (``PING\\r\\n``, as typed into telnet) is split on spaces."""
    line = await reader.readuntil(b"\r\n")
    if not line.startswith(b"*"):
        return line, line.split()
    parts, request = [line], []
    for _ in range(int(line[1:-2])):
        header = await reader.readuntil(b"\r\n")
        data = await reader.readexactly(int(header[1:-2]) + 2)
        parts += (header, data)
        request.append(data[:-2])
    return b"".join(parts), request


async def read_value(reader: asyncio.StreamReader) -> bytes:
    """One complete RESP2 or RESP3 value (a reply), as raw bytes."""
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
        size = int(body)
        return line if size < 0 else line + await reader.readexactly(size + 2)
    if kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push; map and attribute have pairs
        count = int(body) * (2 if kind in (b"%", b"|") else 1)
        parts = [line] + [await read_value(reader) for _ in range(max(count, 0))]
        if kind == b"|":  # an attribute comes before the value it describes
            parts.append(await read_value(reader))
        return b"".join(parts)
    return line  # simple string, error, integer, null, double, boolean, big number
