"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the gateway's upstream hop.

Why not httpx: measured on the 2-core bench machine, ``httpx.AsyncClient`` costs 0.8 ms of
CPU per small POST at concurrency 1 and 1.5 ms at 16 (httpcore scans and polls every pooled
connection on each request), which alone is over the gateway's whole CPU budget per request
(TARGETS.md: 0.7 ms). This client does only what an OpenAI-compatible upstream needs: POST
with a pre-built header block, ``content-length`` or ``chunked`` or read-to-EOF bodies, a
LIFO pool of idle keep-alive connections, TLS for ``https`` URLs, and timeouts. No redirects,
proxies, cookies or compression (``accept-encoding: identity``): upstreams are configured
URLs, not the open web.

A request that finds its pooled connection closed by the server before any byte of the
response (an idle keep-alive timeout) is sent once more on a fresh connection; any other
failure closes the connection and raises, so a connection in an unknown state is never reused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


class ConnectFailed(Exception):
    """No connection, or it broke before the response began: nothing was processed."""


class ReadTimeout(Exception):
    pass


class ProtocolError(Exception):
    pass


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class Response:
    """Status and headers are read; read the body with ``read`` or ``iter_lines``, then the
    connection goes back to the pool (or is closed when the body was not fully read)."""

    def __init__(
        self, client: Http11Client, conn: _Conn, status: int, headers: dict[str, str]
    ) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status = status
        self.headers = headers
        self._keep = headers.get("connection", "").lower() != "close"

    async def read(self) -> bytes:
        length = self._content_length()
        if length is None:
            return b"".join([piece async for piece in self._pieces()])
        # The usual answer (a ``content-length`` body) without the async generator: the
        # same read, errors and pooling as ``_pieces``, at a few µs less per request.
        conn = self._conn
        if conn is None:
            return b""
        try:
            async with asyncio.timeout(self._client.timeout_s):
                piece = await conn.reader.readexactly(length)
        except BaseException as exc:
            self._fail(exc)
            raise
        self._done(conn)
        return piece

    async def iter_lines(self) -> AsyncIterator[bytes]:
        buffer = b""
        async for piece in self._pieces():
            buffer += piece
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r")
        if buffer:
            yield buffer.rstrip(b"\r")

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (then it is pooled)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _content_length(self) -> int | None:
        """The body length when ``content-length`` delimits it (not chunked, not 204/304)."""
        if self.status in (204, 304) or "content-length" not in self.headers:
            return None
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return None
        length = self.headers["content-length"]
        return int(length) if length.isdecimal() else None  # else ``_pieces`` raises as before

    def _fail(self, exc: BaseException) -> None:
        """Close the connection and raise what a failed body read means (for ``read``)."""
        self.close()
        if isinstance(exc, TimeoutError):
            raise ReadTimeout("the upstream stopped sending") from exc
        if isinstance(exc, asyncio.IncompleteReadError | asyncio.LimitOverrunError | ValueError):
            raise ProtocolError(f"malformed or cut response body: {type(exc).__name__}") from exc

    def _done(self, conn: _Conn) -> None:
        self._conn = None
        if self._keep:
            self._client.release(conn)
        else:
            conn.close()

    async def _pieces(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        reader, timeout = conn.reader, self._client.timeout_s
        try:
            if self.status in (204, 304):
                pass  # no body by definition
            elif "chunked" in self.headers.get("transfer-encoding", "").lower():
                while True:
                    async with asyncio.timeout(timeout):
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        if size == 0:
                            while await reader.readuntil(b"\r\n") != b"\r\n":
                                pass  # trailers
                            break
                        piece = await reader.readexactly(size + 2)
                    yield piece[:-2]
            elif "content-length" in self.headers:
                async with asyncio.timeout(timeout):
                    piece = await reader.readexactly(int(self.headers["content-length"]))
                yield piece
            else:  # the body ends when the server closes
                self._keep = False
                async with asyncio.timeout(timeout):
                    piece = await reader.read()
                yield piece
        except TimeoutError as exc:
            self.close()
            raise ReadTimeout("the upstream stopped sending") from exc
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise ProtocolError(f"malformed or cut response body: {type(exc).__name__}") from exc
        except BaseException:
            self.close()
            raise
        self._done(conn)


class Http11Client:
    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_idle: int = 64,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._prefix = url.path.rstrip("/")
        authority = url.netloc.rsplit("@", 1)[-1]
        fixed = {"host": authority, "accept-encoding": "identity", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle
        self._idle: list[_Conn] = []

    def release(self, conn: _Conn) -> None:
        if len(self._idle) < self._max_idle and not conn.writer.is_closing():
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self._ssl, limit=MAX_HEAD
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect: {type(exc).__name__}") from exc
        return _Conn(reader, writer)

    async def post(self, path: str, body: bytes) -> Response:
        """Send a POST; returns once the status line and headers are in."""
        raw = (
            f"POST {self._prefix}/{path} HTTP/1.1\r\n{self._head}"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                conn.writer.write(raw)
                async with asyncio.timeout(self.timeout_s):
                    head = await conn.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.close()
                partial = getattr(exc, "partial", b"")
                if reused and attempt == 0 and not partial:
                    continue  # a keep-alive connection the server had closed: try a fresh one
                raise ConnectFailed(f"connection lost: {type(exc).__name__}") from exc
            except TimeoutError as exc:
                conn.close()
                raise ReadTimeout("the upstream did not answer in time") from exc
            except BaseException:
                conn.close()
                raise
            return self._parse(conn, head)
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, conn: _Conn, head: bytes) -> Response:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            conn.close()
            raise ProtocolError("not an HTTP/1.x response")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return Response(self, conn, int(parts[1]), headers)
