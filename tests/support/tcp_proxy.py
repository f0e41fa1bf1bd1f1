"""A TCP proxy a test can cut: put it between a process and its database to make the
database go away and come back without touching the database server.

`TcpProxy(host, port).start()` listens on a free loopback port (`proxy.port`) on a
thread of its own and forwards every connection to `host:port`. `cut(...)` aborts every
live connection (both sides see a reset, as when a server dies) and then, until
`restore()`:

* `Cut.REFUSE`: nothing listens any more, so new connections are refused at once (a
  database server that is stopped);
* `Cut.HOLD`: new connections are accepted and then never answered (a server that
  hangs, or a network that drops packets: only the client's own timeouts end the wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from enum import Enum
from typing import TypeVar

T = TypeVar("T")

CHUNK = 64 * 1024


class Cut(Enum):
    """How the proxy treats new connections while it is cut."""

    REFUSE = "refuse"
    HOLD = "hold"


class TcpProxy:
    """A cuttable TCP forwarder on 127.0.0.1 (see the module docstring)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections accepted so far (held ones included)
        self._cut: Cut | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        # Every transport the proxy opened or accepted, to abort them on a cut.
        self._live: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()

    # --- lifecycle (called from the test's thread) ----------------------------------

    def start(self) -> TcpProxy:
        """Listen and forward, on a background thread; returns self once listening."""
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._listen())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the TCP proxy did not start")
        return self

    def close(self) -> None:
        """Stop listening, drop every connection, end the thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def cut(self, mode: Cut = Cut.REFUSE) -> None:
        """Abort every live connection, then refuse or hold new ones until `restore`."""
        self._call(self._do_cut(mode))

    def restore(self) -> None:
        """Forward new connections again (held ones are dropped; their clients retry)."""
        self._call(self._do_restore())

    @property
    def live_connections(self) -> int:
        """Forwarded connections open now (two transports each)."""
        return len(self._live) // 2

    def _call(self, coroutine: Awaitable[T]) -> T:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    # --- on the proxy's loop ---------------------------------------------------------

    async def _listen(self) -> None:
        # reuse_address: after a REFUSE cut, the same port is bound again on restore.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _do_cut(self, mode: Cut) -> None:
        self._cut = mode
        if mode is Cut.REFUSE and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in [*self._live, *self._held]:
            writer.transport.abort()
        self._live.clear()
        self._held.clear()

    async def _do_restore(self) -> None:
        self._cut = None
        for writer in self._held:
            writer.transport.abort()
        self._held.clear()
        if self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in [*self._live, *self._held]:
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._cut is not None:
            # HOLD (REFUSE does not listen): keep the connection open, say nothing.
            self._held.add(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._live.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
        )
        for side in (writer, upstream_writer):
            self._live.discard(side)
            side.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction until EOF or a reset; then close the other side's writing."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
