"""A SIGTERM under LLM load loses no usage-ledger row and invents none.

The real ``python -m paramstack serve`` runs as a subprocess in front of the fake upstream
(in this process, on loopback), with a ledger flush interval far longer than the test, so
every row is still in memory when the signal arrives: only the graceful shutdown (uvicorn
drains in-flight requests and streams, then the lifespan closes the log writer) can write
them. Clients mix fast, slow and streamed chats, so some are mid-call at the signal.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from paramstack.config import Settings
from paramstack.store.engine import make_engine, session_factory
from paramstack.store.tenant_tables import UsageRecord
from tests.conftest import free_port
from tests.fake_upstream import WORDS, chat_prompt_tokens, run_upstream
from tests.test_openai_gateway import MESSAGES, create_tenant, write_models
from tests.test_sigterm_logs import server_env

THREADS = 8
SIGNAL_AFTER_OK = 120
MAX_REQUESTS = 5_000
STARTUP_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0
PROMPT = chat_prompt_tokens(MESSAGES)


@dataclass
class Outcome:
    """What the clients saw; appended to from several threads (list.append is atomic)."""

    ok: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # id -> in, out, when
    other_status: list[tuple[int, str]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def request_for(n: int) -> dict[str, Any]:
    """Fast chat, slow chat (50 ms upstream), or a slow stream with usage in the last chunk."""
    model = "chat-small" if n % 3 == 1 else "slow-chat"
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "max_tokens": 1 + n % 4}
    if n % 3 == 2:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def read_answer(response: httpx.Response, body: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens from the answer, after checking its text is complete."""
    if not body.get("stream"):
        response.read()
        answer = response.json()
        text = answer["choices"][0]["message"]["content"]
        usage = answer["usage"]
    else:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]", events[-3:]
        chunks = [orjson.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
        usage = chunks[-1]["usage"]
    assert text == "".join(WORDS[: body["max_tokens"]]), text
    return int(usage["prompt_tokens"]), int(usage["completion_tokens"])


def load(url: str, key: str, counter: itertools.count[int], outcome: Outcome, end: float) -> None:
    try:
        _load(url, key, counter, outcome, end)
    except Exception as exc:  # an assert in a thread would vanish: report it to the test
        outcome.broken.append(repr(exc))


def _load(url: str, key: str, counter: itertools.count[int], outcome: Outcome, end: float) -> None:
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=30, trust_env=False, headers=headers) as client:
        while time.monotonic() < end:
            n = next(counter)
            if n >= MAX_REQUESTS:
                return
            body = request_for(n)
            try:
                with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        text = response.read()[:200].decode(errors="replace")
                        outcome.other_status.append((response.status_code, text))
                        continue
                    tokens = read_answer(response, body)
            except httpx.ConnectError:
                outcome.refused.append(time.monotonic())
                return
            except httpx.TransportError as exc:  # e.g. a keep-alive connection closed under us
                outcome.transport_errors.append(repr(exc))
                continue
            outcome.ok[response.headers["x-request-id"]] = (*tokens, time.monotonic())


def ledger_rows(settings: Settings) -> list[tuple[str, str, int, int, int]]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            u = UsageRecord
            query = select(u.request_id, u.status, u.status_code, u.tokens_in, u.tokens_out)
            return [tuple(r) for r in session.execute(query)]  # type: ignore[misc]
    finally:
        engine.dispose()


def start_serve(
    env: dict[str, str], cwd: Path, port: int, log: IO[bytes], workers: int = 1
) -> subprocess.Popen[bytes]:
    """``python -m paramstack serve`` on an already migrated database, output to ``log``."""
    args = ["serve", "--port", str(port), "--no-migrate", "--workers", str(workers)]
    return subprocess.Popen(
        [sys.executable, "-m", "paramstack", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(proc: subprocess.Popen[bytes], url: str, key: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=2, trust_env=False, headers=headers) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited during startup with {proc.returncode}"
            try:
                if client.get("/v1/models").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server not ready within {STARTUP_TIMEOUT_S} s")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_llm_load_loses_no_ledger_row(
    settings: Settings, tmp_path: Path, workers: int
) -> None:
    """With two workers (sharing the LMDB limiter) uvicorn's supervisor passes the signal on
    and each worker drains and flushes its own ledger rows."""
    key = create_tenant(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outcome = Outcome()
    log_path = tmp_path / "server.log"
    with run_upstream(free_port()) as upstream, log_path.open("wb") as log_file:
        env = server_env(settings, tmp_path)
        env["PARAMSTACK_LLM_MODELS_FILE"] = str(write_models(tmp_path / "m.yaml", upstream.url))
        proc = start_serve(env, tmp_path, port, log_file, workers)
        threads: list[threading.Thread] = []
        try:
            wait_ready(proc, url, key)
            counter = itertools.count()
            end = time.monotonic() + LOAD_TIMEOUT_S
            threads = [
                threading.Thread(target=load, args=(url, key, counter, outcome, end), daemon=True)
                for _ in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            while len(outcome.ok) < SIGNAL_AFTER_OK:
                assert time.monotonic() < end, f"only {len(outcome.ok)} chats succeeded"
                assert proc.poll() is None, "server died under load"
                assert not outcome.other_status, outcome.other_status[:3]
                assert not outcome.broken, outcome.broken[:3]
                time.sleep(0.01)
            assert ledger_rows(settings) == [], "rows were flushed before the signal; moot"
            signalled_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            for thread in threads:
                thread.join(max(0.0, end - time.monotonic()) + 5)
            assert not any(t.is_alive() for t in threads), "clients still running at the end"
            returncode = proc.wait(EXIT_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        upstream_calls = upstream.hits.total()
    server_log = log_path.read_text(errors="replace")

    assert returncode in (0, -signal.SIGTERM), (returncode, server_log[-3000:])
    assert "Application shutdown complete" in server_log, server_log[-3000:]
    assert "Traceback" not in server_log, server_log[-3000:]
    assert not outcome.broken, outcome.broken[:5]
    assert not outcome.other_status, outcome.other_status[:5]
    assert len(outcome.refused) == THREADS, "every client must end on a refused connection"
    assert any(when > signalled_at for *_tokens, when in outcome.ok.values()), (
        "no chat was in flight when the signal arrived"
    )

    rows = ledger_rows(settings)
    assert [r for r in rows if (r[1], r[2]) != ("ok", 200)] == [], "no call failed"
    logged = {rid: (tokens_in, tokens_out) for rid, _s, _c, tokens_in, tokens_out in rows}
    assert len(logged) == len(rows), "a request id has two ledger rows"
    answered = {
        rid: (tokens_in, tokens_out) for rid, (tokens_in, tokens_out, _w) in outcome.ok.items()
    }
    missing = sorted(set(answered) - set(logged))
    assert not missing, f"{len(missing)} of {len(answered)} answered chats have no ledger row"
    assert logged == answered, "a row's tokens differ from the usage its client received"
    assert all(tokens_in == PROMPT for tokens_in, _out in logged.values())
    assert upstream_calls == len(rows), "every upstream call is billed exactly once"
