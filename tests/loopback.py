"""An ASGI app served by uvicorn in a thread on a loopback port, for the tests' real servers
(the gateway itself and the fake third-party upstreams)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_in_thread(
    app: Any, port: int, what: str, start_timeout_s: float = 15, **options: Any
) -> Iterator[None]:
    """Serve ``app`` until the block ends; ``what`` names it when it fails to start;
    ``options`` go to ``uvicorn.Config`` (the gateway's ``SERVER_OPTIONS``)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(30)
