"""Load generation and CPU accounting for the gateway benchmark.

Non-streaming load is ``wrk`` (C, one thread, epoll; about 10 µs of CPU per request here, so
on 2 cores it takes a few percent of one core even at 10k req/s and is never the bottleneck:
``Point.client_cpu_ms`` reports its measured share). Its Lua ``done`` hook prints exact
p50/p99 and error counts as JSON. Streaming is measured by a small asyncio client (wrk cannot
time the first chunk): time to the first ``data: {`` event and the number of failed streams.
CPU time comes from the processes' own counters (psutil, user + system, children included),
read just before and after each measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import math
import resource
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

HOST = "127.0.0.1"

LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n@@{{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,"non2xx":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Target:
    """Where and how to send one chat request (headers as the peer wants them)."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    body: bytes
    stream_body: bytes
    pids: list[int] = field(default_factory=list)  # server processes to charge CPU to


@dataclass
class Point:
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms: float | None  # server CPU time per request, children included
    client_cpu_ms: float  # wrk's CPU time per request
    machine_busy: float  # share of all cores busy during the window (0..1)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU of the processes and all their live children."""
    total = 0.0
    try:
        for pid in pids:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = p.cpu_times()
                    total += t.user + t.system
    except psutil.NoSuchProcess:
        return None
    return total


def _busy() -> tuple[float, float]:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle, sum(t)


@contextlib.contextmanager
def lua_script(target: Target) -> Iterator[Path]:
    headers = "\n".join(
        f'wrk.headers["{k}"] = "{v}"'
        for k, v in {"content-type": "application/json", **target.headers}.items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA.format(body=target.body.decode(), headers=headers))
    try:
        yield Path(f.name)
    finally:
        Path(f.name).unlink()


def _wrk(target: Target, script: Path, concurrency: int, seconds: float) -> dict[str, int]:
    url = f"http://{HOST}:{target.port}{target.path}"
    args = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    out = subprocess.run(
        [*args, "-s", str(script), url], capture_output=True, text=True, check=False
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("@@")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out[-500:]}")
    return dict(json.loads(line[2:]))


def prime(target: Target, n: int = 5, timeout_s: float = 60.0) -> None:
    """A few real requests first: some servers import or build things on their first call
    (LiteLLM takes seconds), which no measured window should contain."""
    headers = {"content-type": "application/json", **target.headers}
    conn = http.client.HTTPConnection(HOST, target.port, timeout=timeout_s)
    try:
        for _ in range(n):
            conn.request("POST", target.path, body=target.body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{target.name} answered HTTP {response.status}")
    finally:
        conn.close()


def run_point(target: Target, concurrency: int, seconds: float, warmup_s: float) -> Point:
    with lua_script(target) as script:
        if warmup_s > 0:
            _wrk(target, script, concurrency, warmup_s)
            prime(target, n=1)  # queued behind what the warmup left in flight: waits it out
        cpu0 = cpu_seconds(target.pids)
        busy0, all0 = _busy()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = _wrk(target, script, concurrency, seconds)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy1, all1 = _busy()
        cpu1 = cpu_seconds(target.pids)
    n = r["requests"]
    if n == 0:  # nothing finished inside the window: no latency, no CPU figure
        return Point(
            concurrency,
            0.0,
            math.nan,
            math.nan,
            0,
            r["socket_errors"] + r["non2xx"] + 1,
            None,
            0.0,
            (busy1 - busy0) / max(1e-9, all1 - all0),
        )
    client = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    server = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / n
    return Point(
        concurrency=concurrency,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        requests=r["requests"],
        errors=r["socket_errors"] + r["non2xx"],
        server_cpu_ms=server,
        client_cpu_ms=client * 1000 / n,
        machine_busy=(busy1 - busy0) / max(1e-9, all1 - all0),
    )


def _raw(target: Target, body: bytes) -> bytes:
    headers = {"host": f"{HOST}:{target.port}", "content-type": "application/json"}
    headers |= target.headers
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {target.path} HTTP/1.1\r\n{head}content-length: {len(body)}\r\n\r\n".encode() + body
    )


class StreamFailed(Exception):
    pass


async def _one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> float:
    """Send one streaming request; the ms to the first ``data: {`` event."""
    t0 = time.perf_counter()
    first: float | None = None
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            piece = await reader.readexactly(size + 2)
            if first is None and b"data: {" in piece:
                first = (time.perf_counter() - t0) * 1000
    elif b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        piece = await reader.readexactly(length)
        if b"data: {" in piece:
            first = (time.perf_counter() - t0) * 1000
    else:
        raise ConnectionError("no length and no chunking")
    if not head.startswith(b"HTTP/1.1 200"):
        raise StreamFailed(status)
    if first is None:
        raise StreamFailed("no data event")
    return first


async def _stream_worker(target: Target, n: int, times: list[float], errors: list[str]) -> None:
    raw = _raw(target, target.stream_body)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for _ in range(n):
        try:
            if conn is None:
                conn = await asyncio.open_connection(HOST, target.port)
            async with asyncio.timeout(30):
                first = await _one_stream(*conn, raw)
        except StreamFailed as exc:
            errors.append(str(exc))
            continue
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            errors.append(type(exc).__name__)
            if conn is not None:
                conn[1].close()
            conn = None
            continue
        times.append(first)
    if conn is not None:
        conn[1].close()


def stream_point(target: Target, concurrency: int, requests: int) -> dict[str, float | int]:
    """First-chunk p50/p99 and failed streams, ``requests`` streams over ``concurrency``
    keep-alive connections (after a short warmup)."""

    async def go() -> tuple[list[float], list[str]]:
        await asyncio.gather(*(_stream_worker(target, 3, [], []) for _ in range(concurrency)))
        times: list[float] = []
        errors: list[str] = []
        per = max(1, requests // concurrency)
        await asyncio.gather(
            *(_stream_worker(target, per, times, errors) for _ in range(concurrency))
        )
        return times, errors

    import uvloop

    times, errors = uvloop.run(go())
    times.sort()
    pick = (lambda q: times[min(len(times) - 1, int(len(times) * q))]) if times else None
    return {
        "concurrency": concurrency,
        "streams": len(times) + len(errors),
        "errors": len(errors),
        "error_kinds": dict(Counter(errors)),
        "first_chunk_p50_ms": pick(0.5) if pick else float("nan"),
        "first_chunk_p99_ms": pick(0.99) if pick else float("nan"),
    }
