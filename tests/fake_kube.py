"""The slice of the Kubernetes API that canary operations use, as a real HTTP server on loopback.

``GET`` and ``PATCH`` (JSON merge patch, RFC 7386) of KServe InferenceServices under
``/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}``, a bearer token
checked on every request, 404/401/415 in the API server's ``Status`` shape, and every request
kept in ``requests`` so tests can see what the client really sent.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

PATH = re.compile(
    r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/?]+)$"
)
TOKEN = "test-token-not-a-secret"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def inference_service(name: str, namespace: str, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"predictor": {"canaryTrafficPercent": canary, "model": {"runtime": "vllm"}}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {
                "predictor": {
                    "latestReadyRevision": f"{name}-predictor-00002",
                    "previousRolledoutRevision": f"{name}-predictor-00001",
                }
            },
        },
    }


@dataclass
class FakeKube:
    url: str
    objects: dict[tuple[str, str], dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "ci", "user": {"token": TOKEN}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ci"}}],
                    "current-context": "fake",
                }
            )
        )
        return path


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": message, "reason": reason, "code": code})  # fmt: skip

        def _find(self) -> tuple[str, str] | None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kube.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(body) if body else None,
                }
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._status(401, "Unauthorized", "Unauthorized")
                return None
            match = PATH.match(self.path.split("?")[0])
            if match is None or (match[1], match[2]) not in kube.objects:
                self._status(404, "NotFound", f"inferenceservices {self.path!r} not found")
                return None
            return match[1], match[2]

        def do_GET(self) -> None:
            key = self._find()
            if key is not None:
                self._send(200, kube.objects[key])

        def do_PATCH(self) -> None:
            key = self._find()
            if key is None:
                return
            sent = kube.requests[-1]
            if sent["content_type"] != "application/merge-patch+json":
                self._status(415, "UnsupportedMediaType", str(sent["content_type"]))
                return
            obj = merge_patch(copy.deepcopy(kube.objects[key]), sent["body"])
            obj["metadata"]["generation"] += 1
            kube.objects[key] = obj
            self._send(200, obj)

    return Handler


@contextmanager
def run_kube(*objects: dict[str, Any]) -> Iterator[FakeKube]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    kube = FakeKube(
        f"http://127.0.0.1:{server.server_address[1]}",
        {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects},
    )
    server.RequestHandlerClass = _handler(kube)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kube
    finally:
        server.shutdown()
        server.server_close()
