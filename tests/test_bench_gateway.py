"""The gateway benchmark's own parts: its fast fake upstream is OpenAI-compatible (checked with
the official SDK), its streaming client counts what it should, and a peer that dies at start
is reported with its reason instead of hanging the run."""

from __future__ import annotations

import sys
from pathlib import Path

import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "gwbench"))
from load import stream_point
from peers import PeerUnavailable, running, upstream


def test_fast_upstream_speaks_openai(tmp_path: Path) -> None:
    with upstream(tmp_path) as target:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{target.port}/v1", api_key="x")
        messages = [{"role": "user", "content": "hi there"}]
        whole = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        assert whole.choices[0].message.content == "Merhaba from the fake upstream"
        assert whole.usage is not None
        assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (4, 5)
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Merhaba from the fake upstream"
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 9


def test_stream_client_times_every_stream(tmp_path: Path) -> None:
    with upstream(tmp_path) as target:
        result = stream_point(target, concurrency=4, requests=40)
    assert result["streams"] == 40 and result["errors"] == 0
    assert 0 < result["first_chunk_p50_ms"] <= result["first_chunk_p99_ms"] < 1000


def test_stream_client_counts_failures(tmp_path: Path) -> None:
    with upstream(tmp_path) as target:
        target.stream_body = b"not json"  # the upstream answers 400
        result = stream_point(target, concurrency=2, requests=10)
    assert result["errors"] == 10
    assert result["error_kinds"] == {"HTTP/1.1 400 Bad Request": 10}


def test_a_peer_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    args = [sys.executable, "-c", "import sys; print('no config here'); sys.exit(3)"]
    log = tmp_path / "peer.log"
    with (
        pytest.raises(PeerUnavailable, match="exited with code 3") as info,
        running(args, {}, 1, "/", log, timeout_s=20),
    ):
        pass
    assert "no config here" in str(info.value)


def test_floor_app_forwards_a_chat_through_the_gateways_upstream_client(tmp_path: Path) -> None:
    """``bench/gateway_floor.py``'s baseline really makes the upstream hop (no canned answer)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from gateway_floor import floor

    with upstream(tmp_path) as direct, floor(f"http://127.0.0.1:{direct.port}/v1", tmp_path) as t:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{t.port}/v1", api_key="x")
        messages = [{"role": "user", "content": "one two three"}]
        whole = client.chat.completions.create(model="any", messages=messages)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == "Merhaba from the fake upstream"
    assert whole.model == "m"  # the floor renames the model before forwarding, as ours does
    assert whole.usage is not None and whole.usage.prompt_tokens == 5  # counted upstream


@pytest.mark.parametrize("limiter", ["auto", "redis"])
def test_two_workers_share_one_limiter_and_answer_through_the_sdk(
    tmp_path: Path, limiter: str
) -> None:
    """``--workers 2``: both workers answer and share the LMDB file (auto) or a private
    Redis, whose CPU is then charged to the gateway (its pid is among the target's)."""
    import psutil
    import redis
    from peers import ours

    with (
        upstream(tmp_path) as direct,
        ours(f"http://127.0.0.1:{direct.port}/v1", tmp_path, workers=2, limiter=limiter) as target,
    ):
        shared = "redis" if limiter == "redis" else "lmdb"
        assert f"2 workers, {shared}" in target.name
        assert len(target.pids) == (2 if limiter == "redis" else 1)
        workers = psutil.Process(target.pids[0]).children(recursive=True)
        assert len([p for p in workers if "python" in p.name()]) >= 2
        api_key = target.headers["authorization"].removeprefix("Bearer ")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{target.port}/v1", api_key=api_key)
        for _ in range(4):
            answer = client.chat.completions.create(
                model="bench-chat",
                messages=[{"role": "user", "content": "hi"}],  # type: ignore[list-item]
                max_tokens=5,
            )
            assert answer.choices[0].message.content == "Merhaba from the fake upstream"
        if limiter == "redis":
            assert psutil.Process(target.pids[1]).name().startswith("redis-server")
            listening = psutil.Process(target.pids[1]).net_connections(kind="inet")
            port = next(c.laddr.port for c in listening if c.status == psutil.CONN_LISTEN)
            assert redis.Redis(host="127.0.0.1", port=port).dbsize() > 0  # limiter state
        else:
            assert (tmp_path / "home" / "limiter" / "data.mdb").stat().st_size > 0


def test_mypyc_bench_names_modules_that_exist() -> None:
    """``bench/gateway_mypyc.py`` compiles a fixed module list: a renamed or removed module
    must fail here, not three minutes into a mypyc build."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import gateway_mypyc

    src = Path(__file__).resolve().parents[1] / "src" / "paramstack"
    missing = [m for m in gateway_mypyc.COMPILED if not (src / f"{m}.py").is_file()]
    assert missing == []
    assert len(set(gateway_mypyc.COMPILED)) == len(gateway_mypyc.COMPILED)
    script = gateway_mypyc.BUILD.format(modules=gateway_mypyc.COMPILED)
    compile(script, "<mypyc build>", "exec")  # the build script is valid Python
    assert 'f"src/paramstack/{m}.py"' in script and "'gateway/hot_routes'" in script
