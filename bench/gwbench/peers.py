"""The gateways under test: install (pinned, outside our virtualenv), configure, start.

- ours: ``paramstack serve`` (1 worker) on a fresh home with a tenant whose rate limit and
  daily token quota are on (high enough never to refuse), a price book (ledger rows with a
  cost), an API key, the default guard policy; no attestation key, so answers are not signed.
- LiteLLM proxy (``litellm[proxy]`` from PyPI) in ``bench/.venvs/litellm``: a master key
  (checked on every request) and model-level ``rpm``/``tpm`` limits enforced by the router's
  pre-call checks. Virtual keys, per-key limits and spend logs need its Prisma database
  (an engine download), so they are off here.
- Portkey's Node gateway (``@portkey-ai/gateway`` from npm) in ``bench/.node``: the open-source
  build has no key auth and no rate limits; it forwards to the upstream named in its
  ``x-portkey-custom-host`` header.
A peer that cannot be installed or started raises ``PeerUnavailable`` with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
from load import HOST, Target

ROOT = Path(__file__).resolve().parents[2]
LITELLM_VERSION = "1.106.2"
PORTKEY_VERSION = "1.15.2"
LITELLM_VENV = ROOT / "bench" / ".venvs" / "litellm"
NODE_DIR = ROOT / "bench" / ".node"
MASTER_KEY = "sk-bench-master-0123456789"
CHAT = {"model": "bench-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
BODY = orjson.dumps(CHAT)
STREAM_BODY = orjson.dumps({**CHAT, "stream": True, "stream_options": {"include_usage": True}})


class PeerUnavailable(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], port: int, path: str, timeout_s: float) -> None:
    """Until ``GET path`` answers at all (any status): the port alone opens too early."""
    deadline = time.monotonic() + timeout_s
    probe = f"GET {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailable(f"exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 2) as sock:
            sock.sendall(probe)
            if sock.recv(12).startswith(b"HTTP/1."):
                return
        time.sleep(0.2)
    raise PeerUnavailable(f"not answering on port {port} after {timeout_s:.0f} s")


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str], port: int, probe: str, log: Path, timeout_s: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_ready(proc, port, probe, timeout_s)
        except PeerUnavailable as exc:
            tail = log.read_text(errors="replace")[-800:]
            raise PeerUnavailable(f"{exc}; log tail:\n{tail}") from exc
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _checked(args: list[str], what: str, cwd: Path = ROOT) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerUnavailable(f"{what} failed: {(done.stderr or done.stdout)[-800:]}")


def install_litellm() -> str:
    """Its own virtualenv (its pins never touch ours), created once; returns the version."""
    python = LITELLM_VENV / "bin" / "python"
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        _checked([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)], "python -m venv")
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        _checked([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], "pip install litellm[proxy]")
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PeerUnavailable(f"litellm is not importable: {done.stderr[-400:]}")
    return done.stdout.strip()


def install_portkey() -> str:
    server = NODE_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if not server.exists():
        if shutil.which("npm") is None:
            raise PeerUnavailable("npm is not installed")
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        args = [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            f"@portkey-ai/gateway@{PORTKEY_VERSION}",
        ]
        _checked(args, "npm install @portkey-ai/gateway", cwd=NODE_DIR)
    meta = orjson.loads((server.parents[1] / "package.json").read_bytes())
    return str(meta["version"])


@contextlib.contextmanager
def litellm(upstream_url: str, work: Path, workers: int = 1) -> Iterator[Target]:
    version = install_litellm()
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": "bench-chat",
                "litellm_params": {
                    "model": "openai/m",
                    "api_base": upstream_url,
                    "api_key": "sk-upstream",
                    "rpm": 1_000_000,
                    "tpm": 10**12,
                },
            }
        ],
        "router_settings": {"enable_pre_call_checks": True},
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = work / "litellm.yaml"
    path.write_bytes(orjson.dumps(config))  # JSON is YAML
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no cost-map download at start
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    env.pop("DATABASE_URL", None)
    # the venv's python runs the entry script, so a moved venv (stale shebang) still works
    python, exe = str(LITELLM_VENV / "bin" / "python"), str(LITELLM_VENV / "bin" / "litellm")
    args = [
        python,
        exe,
        "--config",
        str(path),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        str(workers),
    ]
    with running(args, env, port, "/health/liveliness", work / "litellm.log") as proc:
        yield Target(
            name=f"litellm {version}" + (f" ({workers} workers)" if workers > 1 else ""),
            port=port,
            path="/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            body=BODY,
            stream_body=STREAM_BODY,
            pids=[proc.pid],
        )


@contextlib.contextmanager
def portkey(upstream_url: str, work: Path) -> Iterator[Target]:
    version = install_portkey()
    if shutil.which("node") is None:
        raise PeerUnavailable("node is not installed")
    port = free_port()
    server = NODE_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    env = {**os.environ, "NODE_ENV": "production"}
    args = ["node", str(server), f"--port={port}", "--headless"]
    with running(args, env, port, "/", work / "portkey.log") as proc:
        yield Target(
            name=f"portkey {version}",
            port=port,
            path="/v1/chat/completions",
            headers={
                "authorization": "Bearer sk-upstream",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": upstream_url,
            },
            body=BODY,
            stream_body=STREAM_BODY,
            pids=[proc.pid],
        )


def prepare_home(home: Path, upstream_url: str) -> tuple[dict[str, str], str]:
    """A fresh home with one tenant (limits + quota on), a price, and an API key."""
    from decimal import Decimal

    from paramstack.config import Settings
    from paramstack.registry import api_keys, tenants
    from paramstack.registry.api_keys import KeySpec
    from paramstack.registry.key_material import resolve_pepper
    from paramstack.registry.tenants import TenantSpec
    from paramstack.store import migrate
    from paramstack.store.engine import make_engine, session_factory, transaction

    models = home / "models.yaml"
    home.mkdir(parents=True, exist_ok=True)
    route = {"name": "bench-chat", "base_url": upstream_url, "upstream_model": "m"}
    models.write_bytes(orjson.dumps({"models": [route]}))  # JSON is YAML
    settings = Settings(home=home)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        limits = {"requests_per_second": 1_000_000, "tokens_per_day": 10**12}
        tenants.create_tenant(s, TenantSpec(id="bench", name="Bench", **limits))  # type: ignore[arg-type]
        tenants.set_price(s, "bench", "bench-chat", Decimal("0.5"), Decimal("1.5"))
        key = api_keys.create_key(s, "bench", KeySpec(), resolve_pepper(settings)).plaintext
    engine.dispose()
    env = {**os.environ, "PARAMSTACK_HOME": str(home), "PARAMSTACK_LLM_MODELS_FILE": str(models)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env, key


@contextlib.contextmanager
def redis_server(work: Path) -> Iterator[tuple[str, int]]:
    """A private ``redis-server`` without persistence, for the multi-worker limiter: yields its
    URL and pid (its CPU is charged to the gateway)."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        raise PeerUnavailable("redis-server is not installed (scripts/start-redis.sh installs it)")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    with (work / "redis.log").open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host=HOST, port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise PeerUnavailable(f"redis-server did not start: {exc}") from exc
                time.sleep(0.05)
        client.close()
        yield f"redis://{HOST}:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def ours(
    upstream_url: str,
    work: Path,
    workers: int = 1,
    limiter: str = "auto",
    guard: bool = False,
    remember: bool = True,
) -> Iterator[Target]:
    """``workers`` processes; with several they share limits and quotas through the LMDB file
    (``limiter="auto"``, what ``serve --workers N`` picks) or a private Redis. ``guard``: the
    default guard policy on prompts and answers (the peers have none), else off.
    ``remember=False``: the same policy with ``verdict_cache: 0``, so the bench's repeated
    prompt is scanned on every request as a never-seen prompt would be."""
    from paramstack import __version__
    from paramstack.guard.policy import Policy

    home = work / ("home" if not guard else "home-guard" if remember else "home-guard-nocache")
    env, key = prepare_home(home, upstream_url)
    env["PARAMSTACK_GUARD"] = "true" if guard else "false"
    name = f"paramstack {__version__}" + (" + guard" if guard else "")
    if guard and not remember:
        policy = home / "policy-nocache.json"
        policy.write_text(
            Policy.from_yaml().model_copy(update={"verdict_cache": 0}).model_dump_json()
        )
        env["PARAMSTACK_GUARD_POLICY_FILE"] = str(policy)
        name += " (no verdict cache)"
    port = free_port()
    args = [sys.executable, "-m", "paramstack", "serve", "--port", str(port)]
    args += ["--workers", str(workers), "--log-level", "warning"]
    pids: list[int] = []
    with contextlib.ExitStack() as stack:
        if limiter == "redis":
            url, redis_pid = stack.enter_context(redis_server(work))
            env |= {"PARAMSTACK_LIMITER_BACKEND": "redis", "PARAMSTACK_REDIS_URL": url}
            pids = [redis_pid]
        if workers > 1:
            name += f" ({workers} workers, {'redis' if limiter == 'redis' else 'lmdb'})"
        proc = stack.enter_context(running(args, env, port, "/healthz", work / "paramstack.log"))
        yield Target(
            name=name,
            port=port,
            path="/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            body=BODY,
            stream_body=STREAM_BODY,
            pids=[proc.pid, *pids],
        )


@contextlib.contextmanager
def upstream(work: Path) -> Iterator[Target]:
    port = free_port()
    args = [sys.executable, str(Path(__file__).with_name("upstream.py")), str(port)]
    with running(args, dict(os.environ), port, "/", work / "upstream.log") as proc:
        yield Target(
            name="direct",
            port=port,
            path="/v1/chat/completions",
            headers={},
            body=BODY,
            stream_body=STREAM_BODY,
            pids=[proc.pid],
        )
