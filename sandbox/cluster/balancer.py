"""A layer-4 load balancer in front of the frontends, as a platform team puts an NLB or a
Kubernetes Service there: clients dial one address, each new connection goes to a frontend that
accepts it, and a frontend that goes away only drops the connections it held (the SDKs
reconnect, and land on one that is up). TLS passes through untouched: mTLS stays end to end."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable


class TcpBalancer:
    def __init__(self, host: str, port: int, backends: Callable[[], list[tuple[str, int]]]):
        self.host, self.port = host, port
        self._backends = backends  # read at every connection: nodes come and go
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._connections: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpBalancer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        backends = self._backends()
        if not backends:
            return None
        first = next(self._turn)
        for i in range(len(backends)):  # round robin, skipping any that refuse
            host, port = backends[(first + i) % len(backends)]
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        self._connections |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError, ConnectionError, RuntimeError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._connections -= {writer, up_writer}

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self._connections):
                conn.close()

        with contextlib.suppress(RuntimeError, TimeoutError):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
