"""Two real gateway processes sharing one limiter enforce ONE limit through the HTTP routes.

LiteLLM's users keep filing the bug this guards against: limits counted per pod, so N replicas
admit N times the limit. Two ``python -m paramstack serve`` replicas share the database and a
limiter — a Redis key space (replicas on several hosts) or an LMDB file (worker processes of
one host); a burst of concurrent chats through the official ``openai`` client, split across
both, must see exactly the tenant's per-minute allowance admitted in total, and a daily token
quota must never be overspent, whichever replica a request lands on. ``serve --workers 2``
picks the LMDB limiter by itself.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import openai
import pytest

from paramstack.config import Settings
from tests.conftest import free_port
from tests.fake_upstream import chat_prompt_tokens, run_upstream
from tests.test_openai_gateway import MESSAGES, create_tenant, write_models
from tests.test_openai_sigterm import ledger_rows, start_serve, wait_ready
from tests.test_sigterm_logs import server_env

PER_REPLICA = 30
RPM = 17
PROMPT = chat_prompt_tokens(MESSAGES)


@pytest.fixture(params=["redis", "lmdb"])
def shared_limiter(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment that points both replicas at one limiter."""
    if request.param == "lmdb":
        return {
            "PARAMSTACK_LIMITER_BACKEND": "lmdb",
            "PARAMSTACK_LIMITER_PATH": str(tmp_path / "limiter"),
        }
    url, prefix = request.getfixturevalue("redis_space")
    return {
        "PARAMSTACK_LIMITER_BACKEND": "redis",
        "PARAMSTACK_REDIS_URL": url,
        "PARAMSTACK_LIMITER_KEY_PREFIX": prefix,
    }


@contextmanager
def replicas(
    settings: Settings,
    tmp_path: Path,
    limiter_env: dict[str, str],
    key: str,
    count: int = 2,
    workers: int = 1,
) -> Iterator[list[str]]:
    """Serving processes in front of one loopback upstream; yields their base URLs."""
    with ExitStack() as stack:
        upstream = stack.enter_context(run_upstream(free_port()))
        env = server_env(settings, tmp_path)
        env.update(
            PARAMSTACK_LLM_MODELS_FILE=str(write_models(tmp_path / "m.yaml", upstream.url)),
            PARAMSTACK_LOG_FLUSH_INTERVAL_S="0.05",
            **limiter_env,
        )
        urls = []
        for index in range(count):
            port = free_port()
            log = stack.enter_context((tmp_path / f"replica{index}.log").open("wb"))
            proc = start_serve(env, tmp_path, port, log, workers)
            stack.callback(_stop, proc)
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(proc, urls[-1], key)
        yield urls


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def burst(urls: list[str], key: str, max_tokens: int) -> tuple[int, list[openai.APIError]]:
    """PER_REPLICA concurrent chats on each replica; (admitted, refusals)."""
    clients = [openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0) for u in urls]

    async def one(client: openai.AsyncOpenAI) -> openai.APIError | None:
        try:
            await client.chat.completions.create(
                model="chat-small",
                messages=MESSAGES,  # type: ignore[arg-type]
                max_tokens=max_tokens,
            )
        except openai.APIStatusError as exc:
            return exc
        return None

    try:
        calls = [one(c) for c in clients for _ in range(PER_REPLICA)]
        results = await asyncio.gather(*calls)
    finally:
        for client in clients:
            await client.close()
    refusals = [r for r in results if r is not None]
    return len(results) - len(refusals), refusals


def test_two_replicas_admit_exactly_one_per_minute_allowance(
    settings: Settings, tmp_path: Path, shared_limiter: dict[str, str]
) -> None:
    key = create_tenant(settings, requests_per_minute=RPM)
    with replicas(settings, tmp_path, shared_limiter, key) as urls:
        admitted, refusals = asyncio.run(burst(urls, key, max_tokens=2))

    assert admitted == RPM, f"{admitted} admitted across two replicas; the limit is {RPM}"
    assert len(refusals) == 2 * PER_REPLICA - RPM
    for refusal in refusals:
        assert isinstance(refusal, openai.RateLimitError), refusal
        assert int(refusal.response.headers["retry-after"]) >= 1
        assert refusal.response.headers["x-ratelimit-limit-requests"] == str(RPM)
        assert refusal.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_two_replicas_never_overspend_one_daily_token_quota(
    settings: Settings, tmp_path: Path, shared_limiter: dict[str, str]
) -> None:
    """Calls alternate between the replicas, each settling its real usage. Counted per
    replica, each would admit calls until its own total neared the quota (about twice the
    quota billed in all); shared, the bill stays within the one quota and nearly fills it."""
    max_tokens = 50
    per_call = PROMPT + max_tokens
    quota = 20 * per_call
    key = create_tenant(settings, tokens_per_day=quota)
    refusals: list[openai.APIStatusError] = []
    with replicas(settings, tmp_path, shared_limiter, key) as urls:
        clients = [openai.OpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0) for u in urls]
        for n in range(60):
            try:
                clients[n % 2].chat.completions.create(
                    model="chat-small",
                    messages=MESSAGES,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                )
            except openai.APIStatusError as exc:
                refusals.append(exc)
        for client in clients:
            client.close()
    rows = ledger_rows(settings)
    ok = [r for r in rows if r[1] == "ok"]

    billed = sum(tokens_in + tokens_out for *_rest, tokens_in, tokens_out in ok)
    assert billed <= quota, f"{billed} tokens billed across two replicas; the quota is {quota}"
    assert billed > quota // 2, "both replicas' calls must count against the quota"
    assert all(tokens_in + tokens_out == per_call for *_rest, tokens_in, tokens_out in ok)
    assert len(ok) + len(refusals) == 60
    assert all(r.body["code"] == "insufficient_quota" for r in refusals)  # type: ignore[index]


def test_serve_with_two_workers_shares_one_limit_without_configuration(
    settings: Settings, tmp_path: Path
) -> None:
    """``limiter_backend: auto`` (the default) picks the LMDB file for several workers."""
    key = create_tenant(settings, requests_per_minute=RPM)
    with replicas(settings, tmp_path, {}, key, count=1, workers=2) as urls:
        admitted, refusals = asyncio.run(burst(urls * 2, key, max_tokens=2))
    assert admitted == RPM, f"{admitted} admitted by two workers; the limit is {RPM}"
    assert all(isinstance(r, openai.RateLimitError) for r in refusals)
    assert (settings.home / "limiter" / "data.mdb").is_file()
