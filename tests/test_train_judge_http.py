"""The model judge over real HTTP on loopback (the third-party judge cannot exist here):
OpenAI-compatible and Anthropic shapes, the key sent but never in the scores, bad replies
turned into clear errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paramstack.errors import UpstreamError
from paramstack.train.judge import HttpJudge

SCORES = {"relevance": 8, "helpfulness": 6, "accuracy": 10, "safety": 10, "clarity": 4}


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str], dict[str, object]]] = []
    reply = json.dumps(SCORES)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Handler.seen.append((self.path, dict(self.headers), body))
        if self.path.endswith("/chat/completions"):
            out = {"choices": [{"message": {"content": Handler.reply}}],
                   "usage": {"prompt_tokens": 50, "completion_tokens": 20}}  # fmt: skip
        else:
            out = {"content": [{"type": "text", "text": Handler.reply}],
                   "usage": {"input_tokens": 40, "output_tokens": 10}}  # fmt: skip
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.seen.clear()
    Handler.reply = json.dumps(SCORES)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_openai_and_anthropic_judges(judge_url: str) -> None:
    oa = HttpJudge(f"{judge_url}/v1", "judge-model", api_key="sk-test-123")
    verdict = oa.score("Başkent?", "Ankara.", "Ankara'dır.")
    assert verdict.scores == {k: v / 10 for k, v in SCORES.items()}
    path, headers, body = Handler.seen[-1]
    assert path == "/v1/chat/completions" and headers["authorization"] == "Bearer sk-test-123"
    assert body["model"] == "judge-model" and "Ankara." in str(body["messages"])
    assert oa.usage == {"prompt_tokens": 50, "completion_tokens": 20}
    an = HttpJudge(judge_url, "claude-x", api_key="ak", kind="anthropic")
    assert an.score("q", "a").scores["clarity"] == 0.4
    path, headers, _ = Handler.seen[-1]
    assert path == "/v1/messages" and headers["x-api-key"] == "ak"
    assert an.usage == {"prompt_tokens": 40, "completion_tokens": 10}


def test_unparseable_judge_reply_is_an_error(judge_url: str) -> None:
    Handler.reply = "I think it is pretty good."
    with pytest.raises(UpstreamError, match="not the requested JSON"):
        HttpJudge(f"{judge_url}/v1", "m").score("q", "a")
