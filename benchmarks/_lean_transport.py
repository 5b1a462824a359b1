"""A lean HTTP/1.1 keep-alive transport for httpx, for load generation on loopback.

httpx's default transport (httpcore on anyio) spends 1.5-2.3 ms of client CPU per request on
this machine: more than the server under test, so on two cores the load generator, not the
server, would set the measured rate. This transport keeps httpx's client API (requests,
responses, headers) and replaces only the wire layer: one asyncio protocol per pooled
connection, requests written as bytes, responses parsed by ``httptools`` (the parser uvicorn
uses). It supports what the benchmark needs: plain http, Content-Length bodies, keep-alive.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import httpx


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.lost: Exception | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("connection closed")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.waiter is not None
        status = self.parser.get_status_code()
        self.waiter.set_result((status, self.headers, b"".join(self.body)))

    async def round_trip(self, raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Write one request and wait for its whole response."""
        if self.lost is not None or self.transport is None:
            raise httpx.ConnectError(str(self.lost))
        self.headers, self.body = [], []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class LeanTransport(httpx.AsyncBaseTransport):
    """Pooled keep-alive connections to one host; see the module docstring."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[_Connection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle (or new) connection and return the full response."""
        conn = self._idle.pop() if self._idle else await self._connect()
        body = request.content
        head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1".encode()]
        head += [k + b": " + v for k, v in request.headers.raw if k.lower() != b"content-length"]
        head.append(b"content-length: " + str(len(body)).encode())
        status, headers, content = await conn.round_trip(b"\r\n".join(head) + b"\r\n\r\n" + body)
        if conn.lost is None:
            self._idle.append(conn)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._host, self._port)
        return conn

    async def aclose(self) -> None:
        """Close every pooled connection."""
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
