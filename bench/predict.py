#!/usr/bin/env python3
"""Benchmark of ``POST /v1/models/digits/predict`` against raw onnxruntime on the same file.

One command, from the repository root::

    .venv/bin/python bench/predict.py [--requests N] [--concurrency C] [--workers K]

What it does, all on 127.0.0.1:

1. In a fresh ``PARAMSTACK_HOME`` (a temp dir unless ``--home``): ``paramstack db upgrade`` and
   ``paramstack quickstart`` (trains, exports, registers and promotes the ``digits`` model).
2. Cold load: in a fresh Python process, time ``onnxruntime.InferenceSession`` on the server's
   ONNX artifact plus the first ``run`` (median of ``--cold-runs`` processes).
3. Starts ``paramstack serve`` in its own process (result cache off unless ``--cache``) and
   times process start -> first 200 from ``/readyz``.
4. From this (second) process, an asyncio client keeps ``--concurrency`` keep-alive requests in
   flight: first against ``/healthz`` (the load generator's ceiling), then warmup, then the
   measured predict run cycling through all 1,797 distinct digit PNGs, then a concurrency-1 run
   for unloaded latency. Server-side overhead is ``total_ms - inference_ms`` from the bodies.
   The default client writes pre-encoded HTTP/1.1 requests on asyncio streams; ``--client
   httpx`` uses ``httpx.AsyncClient``, whose own CPU cost caps it at a few hundred req/s on a
   2-core machine (the ceiling line shows it).
5. Raw onnxruntime in this process on the same file, 1 thread: preprocessing
   (``paramstack.vision.preprocess.preprocess``) and inference measured separately.
6. Prints a table, ratios and PASS/FAIL against the targets; writes ``--output`` JSON.

The server is killed at the end, also on Ctrl-C, SIGTERM and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

import httpx
import numpy as np

HOST = "127.0.0.1"
MODEL = "digits"
PREDICT_PATH = f"/v1/models/{MODEL}/predict"
REQUEST_TIMEOUT_S = 30.0
T = TypeVar("T")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "predict.json"

TARGET_OVERHEAD_P50_MS = 1.0
TARGET_PREDICTIONS_PER_S = 1000.0
TARGET_COLD_LOAD_S = 1.0

# Runs in a fresh interpreter so nothing (imports, allocator, session) is already warm.
_COLD_LOAD_CODE = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
t1 = time.perf_counter()
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
meta = sess.get_inputs()[0]
shape = [d if isinstance(d, int) and d > 0 else 1 for d in meta.shape]
sess.run(None, {meta.name: np.zeros(shape, dtype=np.float32)})
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "session_s": t2 - t1, "first_run_s": t3 - t2}))
"""


# --------------------------------------------------------------------------------------------
# Small helpers


@dataclass(frozen=True)
class Stats:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Stats:
        if not values_ms:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        arr = np.asarray(values_ms, dtype=np.float64)
        p50, p99 = np.percentile(arr, [50, 99])
        return cls(len(arr), float(p50), float(p99), float(arr.mean()), float(arr.max()))

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "mean_ms": self.mean,
            "max_ms": self.max,
        }


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have run, summed over CPUs (needs psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    t = psutil.cpu_times()
    return float(
        sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    )


def paramstack_cmd(*args: str) -> list[str]:
    """The CLI through this interpreter, so the bench needs no PATH set-up."""
    return [sys.executable, "-m", "paramstack", *args]


def bench_env(home: Path, *, cache: bool) -> dict[str, str]:
    """Environment for the CLI and server: hermetic home, no stray config, cache on/off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARAMSTACK_")}
    env["PARAMSTACK_HOME"] = str(home)
    env["PARAMSTACK_CONFIG"] = str(home / "no-config.toml")  # absent: ignore ./paramstack.toml
    if not cache:
        env["PARAMSTACK_RESULT_CACHE_SIZE"] = "0"
    return env


def run_cli(args: Sequence[str], env: dict[str, str], timeout_s: float) -> tuple[float, str]:
    """Run a paramstack CLI command; return (seconds, stdout). Raises with its output on error."""
    start = time.perf_counter()
    proc = subprocess.run(
        paramstack_cmd(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"`paramstack {' '.join(args)}` exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return elapsed, proc.stdout


# --------------------------------------------------------------------------------------------
# Inputs and the model file


def load_digit_pngs() -> tuple[list[bytes], list[int]]:
    """All 1,797 digits as PNG bytes, with labels: the project's helpers, else sklearn + Pillow."""
    try:
        from paramstack.vision.digits import digit_images, digit_png_bytes

        images, labels = digit_images()
        return [digit_png_bytes(img) for img in images], [int(t) for t in labels]
    except ImportError as exc:
        log(f"paramstack.vision.digits unavailable ({exc}); building PNGs from sklearn")
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pngs: list[bytes] = []
    for pixels in bunch.images:
        buf = io.BytesIO()
        Image.fromarray(np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)).save(buf, "PNG")
        pngs.append(buf.getvalue())
    return pngs, [int(t) for t in bunch.target]


def _onnx_paths_in(obj: Any) -> Iterator[Path]:
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _onnx_paths_in(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _onnx_paths_in(value)
    elif isinstance(obj, str) and obj.endswith(".onnx"):
        yield Path(obj)


def find_model_file(home: Path, env: dict[str, str]) -> Path:
    """The promoted artifact: from `paramstack models show digits --json`, else a glob."""
    try:
        _, out = run_cli(["models", "show", MODEL, "--json"], env, timeout_s=60)
        for candidate in _onnx_paths_in(json.loads(out)):
            path = candidate if candidate.is_absolute() else home / candidate
            if path.is_file():
                return path
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        log(f"`paramstack models show` gave no artifact path ({str(exc).splitlines()[0]})")
    found = sorted(home.glob("artifacts/**/*.onnx"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"no .onnx artifact under {home / 'artifacts'}")
    return found[-1]


# --------------------------------------------------------------------------------------------
# The server process


class Server:
    """`paramstack serve` in its own process group, killed (group-wide) on close."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log_path: Path) -> None:
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._closed = False
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            paramstack_cmd("serve", "--host", HOST, "--port", str(port), "--workers", str(workers)),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds from process start to the first 200 from /readyz."""
        deadline = self.started_at + timeout_s
        with httpx.Client(base_url=self.base_url, timeout=2.0, trust_env=False) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        return time.perf_counter() - self.started_at
                time.sleep(0.02)
        raise RuntimeError(f"server not ready after {timeout_s:.0f} s\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User+system CPU of the server and its worker processes (needs psutil)."""
        try:
            import psutil
        except ImportError:
            return None
        try:
            root = psutil.Process(self.proc.pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            return total
        except psutil.Error:
            return None

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        else:
            # The main process is gone; make sure no worker outlived it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


# --------------------------------------------------------------------------------------------
# Load generation (this process)


@dataclass(frozen=True)
class RequestPlan:
    method: str
    path: str
    bodies: Sequence[bytes] | None  # request i sends bodies[i % len(bodies)]
    headers: dict[str, str]

    def raw_requests(self, host_header: str) -> list[bytes]:
        """Complete HTTP/1.1 requests (head + body), encoded once before the clock starts."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        start = f"{self.method} {self.path} HTTP/1.1\r\nHost: {host_header}\r\n{extra}"
        if not self.bodies:
            return [f"{start}\r\n".encode("latin-1")]
        return [
            f"{start}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
            for body in self.bodies
        ]


class Sender(Protocol):
    async def send(self, index: int) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    """Request `index` of the plan through a shared httpx.AsyncClient."""

    def __init__(self, client: httpx.AsyncClient, plan: RequestPlan) -> None:
        self._client = client
        self._plan = plan

    async def send(self, index: int) -> tuple[int, bytes]:
        plan = self._plan
        content = plan.bodies[index % len(plan.bodies)] if plan.bodies else None
        resp = await self._client.request(
            plan.method, plan.path, content=content, headers=plan.headers
        )
        return resp.status_code, resp.content

    async def aclose(self) -> None:
        return None


class RawSender:
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests, one at a time.

    A few lines of asyncio streams instead of httpx: on a 2-core machine httpx's per-request
    cost (~2 ms of CPU) caps the load at a few hundred req/s, well below the server's rate.
    """

    def __init__(self, port: int, requests: Sequence[bytes], timeout_s: float) -> None:
        self._port = port
        self._requests = requests
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, index: int) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._reader is None or self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(HOST, self._port)
                self._writer.write(self._requests[index % len(self._requests)])
                status, body, keep_alive = await self._read_response(self._reader)
        except BaseException:
            await self.aclose()
            raise
        if not keep_alive:
            await self.aclose()
        return status, body

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        keep_alive = True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionError("connection closed in the response head")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if chunked:
            parts: list[bytes] = []
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            return status, b"".join(parts), keep_alive
        if length is not None:
            return status, await reader.readexactly(length), keep_alive
        return status, await reader.read(), False

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass
class LoadResult:
    name: str
    concurrency: int
    sent: int
    ok: int
    errors: int
    elapsed_s: float
    latency: Stats
    generator_cpu_pct: float
    server_cpu_pct: float | None
    other_cpu_pct: float | None  # the rest of the machine (other processes, kernel), % of a core
    first_error: str | None
    bodies: list[tuple[int, bytes]] = field(repr=False, default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        """Server CPU per successful request: comparable even when other processes compete."""
        if self.server_cpu_pct is None or self.ok == 0:
            return None
        return self.server_cpu_pct / 100.0 * self.elapsed_s / self.ok * 1000.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": self.elapsed_s,
            "requests_per_s": self.rps,
            "latency": self.latency.as_dict(),
            "generator_cpu_pct": self.generator_cpu_pct,
            "server_cpu_pct": self.server_cpu_pct,
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request,
            "other_processes_cpu_pct": self.other_cpu_pct,
            "first_error": self.first_error,
        }


_SEND_ERRORS = (httpx.HTTPError, OSError, EOFError, TimeoutError, ValueError, IndexError)


async def run_load(
    make_sender: Callable[[], Sender],
    *,
    name: str,
    count: int,
    concurrency: int,
    duration_s: float,
    server: Server,
    keep_bodies: bool = False,
) -> LoadResult:
    """Keep `concurrency` requests in flight until `count` are sent or `duration_s` passes."""
    latencies: list[float] = []
    bodies: list[tuple[int, bytes]] = []
    errors = 0
    first_error: str | None = None
    next_index = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal next_index, errors, first_error
        sender = make_sender()
        try:
            while next_index < count and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    status, body = await sender.send(index)
                except _SEND_ERRORS as exc:
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
                    continue
                elapsed_ms = (time.perf_counter() - t0) * 1000.0
                if status == 200:
                    latencies.append(elapsed_ms)
                    if keep_bodies:
                        bodies.append((index, body))
                else:
                    errors += 1
                    first_error = first_error or f"HTTP {status}: {body[:300]!r}"
        finally:
            await sender.aclose()

    server_cpu0 = server.cpu_seconds()
    machine0 = machine_busy_seconds()
    cpu0 = time.process_time()
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, concurrency))]
    try:
        # A stuck request cannot hold the run past its budget plus one request timeout.
        _, pending = await asyncio.wait(tasks, timeout=duration_s + REQUEST_TIMEOUT_S + 5)
        if pending:
            errors += len(pending)
            first_error = first_error or "run exceeded its time budget"
    finally:
        for t in tasks:
            t.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome  # a bug in the bench, not a failed request
    elapsed = time.perf_counter() - start
    gen_cpu = (time.process_time() - cpu0) / elapsed * 100.0 if elapsed > 0 else 0.0
    server_cpu1 = server.cpu_seconds()
    machine1 = machine_busy_seconds()
    server_cpu = (
        (server_cpu1 - server_cpu0) / elapsed * 100.0
        if server_cpu0 is not None and server_cpu1 is not None and elapsed > 0
        else None
    )
    other_cpu = (
        max(0.0, (machine1 - machine0) / elapsed * 100.0 - gen_cpu - server_cpu)
        if machine0 is not None and machine1 is not None and server_cpu is not None
        else None
    )
    return LoadResult(
        name,
        concurrency,
        next_index,
        len(latencies),
        errors,
        elapsed,
        Stats.of(latencies),
        gen_cpu,
        server_cpu,
        other_cpu,
        first_error,
        bodies,
    )


@dataclass
class ServerTimings:
    preprocessing: Stats
    inference: Stats
    total: Stats
    overhead: Stats  # total - inference
    gateway_only: Stats  # total - inference - preprocessing
    accuracy: float | None
    cached: int  # responses with metadata.cached true
    model: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "preprocessing_ms": self.preprocessing.as_dict(),
            "inference_ms": self.inference.as_dict(),
            "total_ms": self.total.as_dict(),
            "overhead_total_minus_inference_ms": self.overhead.as_dict(),
            "gateway_only_ms": self.gateway_only.as_dict(),
            "accuracy_vs_labels": self.accuracy,
            "cached_responses": self.cached,
            "model": self.model,
        }


def server_timings(bodies: list[tuple[int, bytes]], labels: Sequence[int]) -> ServerTimings:
    pre: list[float] = []
    inf: list[float] = []
    tot: list[float] = []
    correct = 0
    cached = 0
    model: dict[str, Any] | None = None
    for index, raw in bodies:
        doc = json.loads(raw)
        perf = doc.get("performance") or {}
        p, i, t = perf.get("preprocessing_ms"), perf.get("inference_ms"), perf.get("total_ms")
        if isinstance(p, int | float) and isinstance(i, int | float) and isinstance(t, int | float):
            pre.append(float(p))
            inf.append(float(i))
            tot.append(float(t))
        if str(doc.get("prediction")) == str(labels[index % len(labels)]):
            correct += 1
        meta = doc.get("metadata")
        if isinstance(meta, dict) and meta.get("cached") is True:
            cached += 1
        if model is None and isinstance(doc.get("model"), dict):
            model = doc["model"]
    return ServerTimings(
        preprocessing=Stats.of(pre),
        inference=Stats.of(inf),
        total=Stats.of(tot),
        overhead=Stats.of([t - i for t, i in zip(tot, inf, strict=True)]),
        gateway_only=Stats.of([t - i - p for t, i, p in zip(tot, inf, pre, strict=True)]),
        accuracy=correct / len(bodies) if bodies else None,
        cached=cached,
        model=model,
    )


def json_bodies(pngs: Sequence[bytes]) -> list[bytes]:
    return [
        json.dumps({"image": base64.b64encode(png).decode("ascii")}).encode("utf-8") for png in pngs
    ]


MULTIPART_BOUNDARY = "paramstack-bench-boundary-7d1f0c"


def multipart_bodies(pngs: Sequence[bytes]) -> list[bytes]:
    """Pre-encoded multipart/form-data bodies with one `file` field (no per-request encoding)."""
    head = (
        f"--{MULTIPART_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="digit.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()
    return [head + png + tail for png in pngs]


async def http_phases(
    args: argparse.Namespace, server: Server, pngs: Sequence[bytes]
) -> dict[str, LoadResult]:
    if args.multipart:
        bodies = multipart_bodies(pngs)
        ctype = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
    else:
        bodies = json_bodies(pngs)
        ctype = "application/json"
    predict = RequestPlan("POST", PREDICT_PATH, bodies, {"Content-Type": ctype})
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    host_header = f"{HOST}:{server.port}"
    results: dict[str, LoadResult] = {}
    async with httpx.AsyncClient(
        base_url=server.base_url,
        limits=limits,
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S),
        trust_env=False,
    ) as client:

        def senders(plan: RequestPlan) -> Callable[[], Sender]:
            if args.client == "httpx":
                return lambda: HttpxSender(client, plan)
            encoded = plan.raw_requests(host_header)
            return lambda: RawSender(server.port, encoded, REQUEST_TIMEOUT_S)

        health_path = "/healthz"
        if (await client.get(health_path)).status_code != 200:
            health_path = "/readyz"
        phases: list[tuple[str, str, RequestPlan, int, int, bool]] = [
            # key, name, plan, count, concurrency, keep bodies
            (
                "generator",
                f"GET {health_path}",
                RequestPlan("GET", health_path, None, {}),
                args.requests,
                args.concurrency,
                False,
            ),
            (
                "warmup",
                "warmup",
                predict,
                max(args.warmup, 2 * args.concurrency),
                args.concurrency,
                False,
            ),
            (
                "predict",
                f"POST predict c={args.concurrency}",
                predict,
                args.requests,
                args.concurrency,
                True,
            ),
            ("predict_c1", "POST predict c=1", predict, args.latency_requests, 1, True),
        ]
        for key, name, plan, count, concurrency, keep in phases:
            log(f"{key}: {name}, {count} requests, max {args.duration:g} s ({args.client} client)")
            results[key] = await run_load(
                senders(plan),
                name=name,
                count=count,
                concurrency=concurrency,
                duration_s=args.duration,
                server=server,
                keep_bodies=keep,
            )
    return results


def run_async(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop when installed (it is, with uvicorn[standard]); SIGTERM cancels the run.

    Ctrl-C is handled by asyncio.Runner itself; both end up as KeyboardInterrupt here.
    """
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop

    async def with_sigterm() -> T:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await coro_factory()

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(with_sigterm())
    except asyncio.CancelledError as exc:
        raise KeyboardInterrupt("SIGTERM") from exc
    finally:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


# --------------------------------------------------------------------------------------------
# Raw onnxruntime, in this process


@dataclass
class RawResult:
    threads: int
    input_shape: list[int]
    preprocess: Stats
    preprocess_rps: float
    inference: Stats
    inference_rps: float
    pipeline: Stats
    pipeline_rps: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "input_shape": self.input_shape,
            "preprocess": self.preprocess.as_dict(),
            "preprocess_per_s": self.preprocess_rps,
            "inference": self.inference.as_dict(),
            "inference_per_s": self.inference_rps,
            "preprocess_plus_inference": self.pipeline.as_dict(),
            "preprocess_plus_inference_per_s": self.pipeline_rps,
        }


def _timed_loop(
    fn: Callable[[int], object], iterations: int, duration_s: float
) -> tuple[list[float], float]:
    """Call fn(i) up to `iterations` times or until `duration_s`; per-call ms and wall seconds."""
    out: list[float] = []
    start = time.perf_counter()
    deadline = start + duration_s
    for i in range(iterations):
        t0 = time.perf_counter()
        fn(i)
        t1 = time.perf_counter()
        out.append((t1 - t0) * 1000.0)
        if t1 >= deadline:
            break
    return out, time.perf_counter() - start


def raw_onnxruntime(
    model_path: Path, pngs: Sequence[bytes], iterations: int, duration_s: float
) -> RawResult:
    import onnxruntime as ort

    from paramstack.vision.preprocess import preprocess

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else -1 for d in meta.shape]
    if len(shape) != 4 or shape[2] < 1 or shape[3] < 1:
        raise RuntimeError(f"model input {shape} is not a fixed-size NCHW image")
    size = (shape[3], shape[2])  # Pillow order: (width, height)
    name = meta.name
    n = len(pngs)

    tensors = [preprocess(png, size) for png in pngs]  # also warms Pillow's decoder
    for i in range(min(200, n)):
        session.run(None, {name: tensors[i]})

    pre_ms, pre_wall = _timed_loop(lambda i: preprocess(pngs[i % n], size), iterations, duration_s)
    inf_ms, inf_wall = _timed_loop(
        lambda i: session.run(None, {name: tensors[i % n]}), iterations, duration_s
    )
    pipe_ms, pipe_wall = _timed_loop(
        lambda i: session.run(None, {name: preprocess(pngs[i % n], size)}), iterations, duration_s
    )
    return RawResult(
        threads=1,
        input_shape=shape,
        preprocess=Stats.of(pre_ms),
        preprocess_rps=len(pre_ms) / pre_wall,
        inference=Stats.of(inf_ms),
        inference_rps=len(inf_ms) / inf_wall,
        pipeline=Stats.of(pipe_ms),
        pipeline_rps=len(pipe_ms) / pipe_wall,
    )


def cold_load(model_path: Path, runs: int) -> dict[str, Any]:
    """Session creation + first run, each in a fresh interpreter; median over `runs`."""
    samples: list[dict[str, float]] = []
    for _ in range(max(1, runs)):
        proc = subprocess.run(
            [sys.executable, "-c", _COLD_LOAD_CODE, str(model_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    load_s = [s["session_s"] + s["first_run_s"] for s in samples]
    return {
        "runs": samples,
        "session_plus_first_run_s": float(np.median(load_s)),
        "session_s": float(np.median([s["session_s"] for s in samples])),
        "first_run_s": float(np.median([s["first_run_s"] for s in samples])),
        "import_onnxruntime_s": float(np.median([s["import_s"] for s in samples])),
    }


# --------------------------------------------------------------------------------------------
# Report


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:  # None or NaN
        return "-"
    return f"{x:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_report(
    results: dict[str, Any],
    http: dict[str, LoadResult],
    raw: RawResult,
    srv: ServerTimings,
    srv1: ServerTimings,
) -> None:
    cfg = results["config"]
    print()
    print(
        f"paramstack predict benchmark: {cfg['cpus']} CPUs, server workers={cfg['workers']}, "
        f"concurrency={cfg['concurrency']}, result cache {'ON' if cfg['cache'] else 'off'}, "
        f"body={'multipart' if cfg['multipart'] else 'json'}, "
        f"{cfg['distinct_images']} distinct images, client={cfg['client']}"
    )
    print(f"model file: {cfg['model_file']} (input {'x'.join(map(str, raw.input_shape))})")
    print()
    header = f"{'phase':<36} {'ok':>7} {'err':>5} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
    print(header)
    print("-" * len(header))

    def row(name: str, ok: int, err: int | None, rps: float, s: Stats) -> None:
        err_s = "-" if err is None else str(err)
        print(
            f"{name:<36} {ok:>7} {err_s:>5} {_fmt(rps, 0):>10} {_fmt(s.p50, 3):>9} "
            f"{_fmt(s.p99, 3):>9}"
        )

    gen, pred, c1 = http["generator"], http["predict"], http["predict_c1"]
    row(f"{gen.name} c={gen.concurrency} (gen. ceiling)", gen.ok, gen.errors, gen.rps, gen.latency)
    row(f"gateway {pred.name}", pred.ok, pred.errors, pred.rps, pred.latency)
    row(f"gateway {c1.name}", c1.ok, c1.errors, c1.rps, c1.latency)
    row("raw ORT inference (1 thread)", raw.inference.n, None, raw.inference_rps, raw.inference)
    row("preprocess only", raw.preprocess.n, None, raw.preprocess_rps, raw.preprocess)
    row("preprocess + ORT (1 thread)", raw.pipeline.n, None, raw.pipeline_rps, raw.pipeline)
    print()
    print(
        f"server-side, from the response bodies   {'c=' + str(pred.concurrency):>21}   {'c=1':>21}"
    )
    for label, a, b in (
        ("preprocessing_ms", srv.preprocessing, srv1.preprocessing),
        ("inference_ms", srv.inference, srv1.inference),
        ("total_ms", srv.total, srv1.total),
        ("overhead = total - inference", srv.overhead, srv1.overhead),
        ("  of which not preprocessing", srv.gateway_only, srv1.gateway_only),
    ):
        print(
            f"  {label:<36} p50 {_fmt(a.p50, 3):>6} p99 {_fmt(a.p99, 3):>6}"
            f"   p50 {_fmt(b.p50, 3):>6} p99 {_fmt(b.p99, 3):>6}"
        )
    acc = "-" if srv.accuracy is None else f"{srv.accuracy:.1%}"
    print(f"  predictions matching the dataset labels: {acc}; served from the result cache: "
          f"{srv.cached} of {srv.total.n}")  # fmt: skip
    for r in (gen, pred):
        print(
            f"CPU during {r.name}: load generator {_fmt(r.generator_cpu_pct, 0)}% of a core, "
            f"server {_fmt(r.server_cpu_pct, 0)}% (all its processes), "
            f"everything else {_fmt(r.other_cpu_pct, 0)}% (other processes, kernel)"
        )
    if (pred.other_cpu_pct or 0.0) > 20.0:
        print(
            "  note: other processes took CPU from this run; the req/s and latencies are"
            " pessimistic (server CPU per request below is the steadier number)"
        )
    per_req = pred.server_cpu_ms_per_request
    if per_req:
        print(
            f"server CPU per predict request: {per_req:.3f} ms "
            f"(= {1000.0 / per_req:,.0f} req/s per core it has to itself)"
        )
    cold = results["cold_load"]
    print(
        f"cold load (fresh process): InferenceSession {_fmt(cold['session_s'] * 1000, 1)} ms + "
        f"first run {_fmt(cold['first_run_s'] * 1000, 1)} ms = "
        f"{_fmt(cold['session_plus_first_run_s'] * 1000, 1)} ms "
        f"(import onnxruntime {_fmt(cold['import_onnxruntime_s'] * 1000, 0)} ms, not counted)"
    )
    print(f"server process start -> /readyz 200: {_fmt(results['server_ready_s'], 2)} s")
    print()
    ratios = results["ratios"]
    for key, label in (
        ("gateway_over_raw_ort", "gateway req/s / raw ORT req/s (1 thread)"),
        ("gateway_over_preprocess_plus_ort", "gateway req/s / preprocess+ORT req/s (1 thread)"),
        ("gateway_over_generator_ceiling", f"gateway req/s / {gen.name} req/s"),
    ):
        print(f"ratio {label:<52} {_fmt(ratios[key], 3):>7}")
    if results["generator_bound"]:
        print(
            "  note: the load generator was near its limit (>80% of the /healthz rate, or >90%"
            " of a core busy): the gateway req/s is a lower bound, not the server's limit"
        )
    print()
    print("targets:")
    for t in results["targets"]:
        print(f"  {t['name']:<36} {t['result']:>16}   {t['verdict']}")
    print()


def build_targets(
    srv: ServerTimings, srv1: ServerTimings, pred: LoadResult, cold_s: float
) -> list[dict[str, Any]]:
    return [
        {
            "name": f"server overhead p50 < {TARGET_OVERHEAD_P50_MS:g} ms (c={pred.concurrency})",
            "value": srv.overhead.p50,
            "unloaded_c1": srv1.overhead.p50,
            "result": f"{_fmt(srv.overhead.p50, 3)} ms",
            "verdict": verdict(srv.overhead.p50 < TARGET_OVERHEAD_P50_MS),
        },
        {
            "name": f">= {TARGET_PREDICTIONS_PER_S:,.0f} predictions/s",
            "value": pred.rps,
            "result": f"{_fmt(pred.rps, 0)} req/s",
            "verdict": verdict(pred.rps >= TARGET_PREDICTIONS_PER_S and pred.errors == 0),
        },
        {
            "name": f"cold load < {TARGET_COLD_LOAD_S:g} s",
            "value": cold_s,
            "result": f"{_fmt(cold_s, 3)} s",
            "verdict": verdict(cold_s < TARGET_COLD_LOAD_S),
        },
    ]


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the gateway's predict endpoint against raw onnxruntime.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--requests", type=int, default=5000, help="measured predict requests")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    p.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="upper bound in seconds for each load phase and each raw ORT loop",
    )
    p.add_argument("--warmup", type=int, default=500, help="warmup predict requests")
    p.add_argument(
        "--latency-requests",
        type=int,
        default=500,
        help="requests in the concurrency-1 latency run",
    )
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", dest="cache", action="store_true", help="leave the server's result cache on"
    )
    cache.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="PARAMSTACK_RESULT_CACHE_SIZE=0 (default)",
    )
    p.set_defaults(cache=False)
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: keep-alive HTTP/1.1 over asyncio streams (raw) or httpx.AsyncClient",
    )
    p.add_argument(
        "--multipart",
        action="store_true",
        help="send multipart `file` uploads instead of base64 JSON",
    )
    p.add_argument(
        "--ort-iterations", type=int, default=5000, help="iterations of each raw onnxruntime loop"
    )
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes for cold load")
    p.add_argument("--port", type=int, default=0, help="server port (0 = a free one)")
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="PARAMSTACK_HOME to use; quickstart is skipped if it has a model "
        "(default: a temp dir, removed afterwards)",
    )
    p.add_argument("--keep-home", action="store_true", help="do not delete the temp home")
    p.add_argument("--ready-timeout", type=float, default=120.0, help="seconds for /readyz")
    p.add_argument("--quickstart-timeout", type=float, default=900.0)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    p.add_argument("--strict", action="store_true", help="exit 1 if any target FAILs")
    args = p.parse_args(argv)
    for name in ("requests", "concurrency", "workers", "ort_iterations", "latency_requests"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0 < args.duration <= 600:
        p.error("--duration must be in (0, 600]")
    return args


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    temp_home = args.home is None
    home: Path = Path(tempfile.mkdtemp(prefix="paramstack-bench-")) if temp_home else args.home
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = bench_env(home, cache=args.cache)
    server: Server | None = None
    load_before = os.getloadavg()[0]
    try:
        setup: dict[str, float] = {}
        if temp_home or not list(home.glob("artifacts/**/*.onnx")):
            log(f"PARAMSTACK_HOME={home}: db upgrade")
            setup["db_upgrade_s"], _ = run_cli(["db", "upgrade"], env, timeout_s=120)
            log("quickstart (train + export + register + promote the digits model)")
            setup["quickstart_s"], _ = run_cli(
                ["quickstart", "--no-llm"], env, args.quickstart_timeout
            )
        model_path = find_model_file(home, env)
        log(f"model file: {model_path}")
        pngs, labels = load_digit_pngs()

        log(f"cold load: {args.cold_runs} fresh processes")
        cold = cold_load(model_path, args.cold_runs)

        port = args.port or free_port()
        log(f"starting server on {HOST}:{port} (workers={args.workers}, cache={args.cache})")
        server = Server(env, port, args.workers, home / "bench-server.log")
        ready_s = server.wait_ready(args.ready_timeout)
        log(f"ready after {ready_s:.2f} s")

        http: dict[str, LoadResult] = run_async(lambda: http_phases(args, server, pngs))
        server.close()  # the raw loop below gets the CPU to itself
        pred = http["predict"]
        if pred.ok == 0:
            raise RuntimeError(f"no successful predict request; first error: {pred.first_error}")
        srv = server_timings(pred.bodies, labels)
        srv1 = server_timings(http["predict_c1"].bodies, labels)

        log(f"raw onnxruntime: up to {args.ort_iterations} iterations per loop, 1 thread")
        raw = raw_onnxruntime(model_path, pngs, args.ort_iterations, args.duration)

        results: dict[str, Any] = {
            "config": {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "duration_limit_s": args.duration,
                "workers": args.workers,
                "cache": args.cache,
                "multipart": args.multipart,
                "distinct_images": len(pngs),
                "model_file": str(model_path),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "client": args.client,
                "load_generator": (
                    "httpx.AsyncClient" if args.client == "httpx" else "asyncio streams, keep-alive"
                )
                + f", {args.concurrency} connections, in the bench process (pid {os.getpid()})",
            },
            "setup": setup,
            "server_ready_s": ready_s,
            "cold_load": cold,
            "http": {k: v.as_dict() for k, v in http.items()},
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
            "server_side": srv.as_dict(),
            "server_side_c1": srv1.as_dict(),
            "raw_onnxruntime": raw.as_dict(),
            "ratios": {
                "gateway_over_raw_ort": pred.rps / raw.inference_rps,
                "gateway_over_preprocess_plus_ort": pred.rps / raw.pipeline_rps,
                "gateway_over_generator_ceiling": pred.rps / http["generator"].rps
                if http["generator"].rps > 0
                else float("nan"),
            },
        }
        gen = http["generator"]
        results["generator_bound"] = bool(pred.rps > 0.8 * gen.rps or pred.generator_cpu_pct > 90)
        results["targets"] = build_targets(srv, srv1, pred, cold["session_plus_first_run_s"])
        print_report(results, http, raw, srv, srv1)

        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(_json_safe(results), indent=2, allow_nan=False) + "\n")
        print(f"results written to {args.output}")
        failed = [t for t in results["targets"] if t["verdict"] != "PASS"]
        return 1 if (args.strict and failed) else 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if server is not None:
            server.close()
        if temp_home and not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)
        elif temp_home:
            log(f"kept {home}")


def _json_safe(obj: Any) -> Any:
    """NaN/inf (an empty sample) become null, so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


if __name__ == "__main__":
    sys.exit(main())
