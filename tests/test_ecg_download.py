"""`paramstack ecg download` against a real loopback HTTP server laid out like PhysioNet
(``/content/<db>/`` names the version, ``/content/<db>/<version>/`` is the project page,
``/files/<db>/<version>/`` holds the files)."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from paramstack.ecg.physionet import download_database
from paramstack.ecg.records import read_record
from paramstack.errors import NotFound, UpstreamError

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
SERVED = ("100", "117")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def physionet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("physionet")
    content = root / "content" / "mitdb"
    (content / "1.0.0").mkdir(parents=True)
    page = "<html><body>\n<p>Version: 1.0.0</p>\n</body></html>\n"
    (content / "index.html").write_text(page, encoding="utf-8")
    (content / "1.0.0" / "index.html").write_text(page, encoding="utf-8")
    files = root / "files" / "mitdb" / "1.0.0"
    files.mkdir(parents=True)
    (files / "RECORDS").write_text("".join(f"{r}\n" for r in SERVED), encoding="ascii")
    (files / "ANNOTATORS").write_text("atr\treference beat annotations\n", encoding="ascii")
    for name in SERVED:
        for suffix in (".hea", ".dat", ".atr"):
            shutil.copy(MITDB / f"{name}{suffix}", files / f"{name}{suffix}")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_download_fetches_every_record_and_reports_progress(physionet: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    names = download_database(
        tmp_path / "mitdb", base_url=physionet, progress=lambda *step: seen.append(step)
    )
    assert names == list(SERVED)
    assert seen == [(1, 2, "100"), (2, 2, "117")]
    for name in SERVED:
        for suffix in (".hea", ".dat", ".atr"):
            got = (tmp_path / "mitdb" / f"{name}{suffix}").read_bytes()
            assert got == (MITDB / f"{name}{suffix}").read_bytes()
    record = read_record(tmp_path / "mitdb", "117")
    assert record.fs == 360
    assert np.array_equal(record.beat_samples, read_record(MITDB, "117").beat_samples)
    # wfdb's own server setting is restored afterwards
    from wfdb.io import download

    assert download.config.db_index_url == "https://physionet.org/files/"
    assert download.PN_CONTENT_URL == "https://physionet.org/content/"


def test_download_errors_are_clear(physionet: str, tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match="cannot reach PhysioNet"):
        download_database(tmp_path, base_url=_closed_port_url())
    with pytest.raises(NotFound, match="nosuchdb"):
        download_database(tmp_path, "nosuchdb", base_url=physionet)
    with pytest.raises(NotFound):
        download_database(tmp_path, records=["999"], base_url=physionet)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARAMSTACK_HOME": str(home)}
    command = [sys.executable, "-m", "paramstack", "ecg", "download", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_download_cli(physionet: str, tmp_path: Path) -> None:
    ok = _cli(tmp_path, "--records", "117", "--out", str(tmp_path / "db"), "--base-url", physionet)
    assert ok.returncode == 0, ok.stderr
    assert "1 records of mitdb" in ok.stdout
    assert (tmp_path / "db" / "117.dat").stat().st_size == (MITDB / "117.dat").stat().st_size
    offline = _cli(tmp_path, "--out", str(tmp_path / "x"), "--base-url", _closed_port_url())
    assert offline.returncode == 7
    assert "cannot reach PhysioNet" in offline.stderr
