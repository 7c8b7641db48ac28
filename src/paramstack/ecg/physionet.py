"""Download a PhysioNet database (MIT-BIH by default) with ``wfdb.dl_database``.

One record per ``dl_database`` call, so the caller can show progress and a rerun skips
what is already on disk (wfdb compares file sizes and appends partial files). The server
is configurable (``base_url``) for mirrors and for tests against a loopback server: wfdb
reads files under ``<base>/files/`` (``set_db_index_url``) but looks up a database's
version on ``<base>/content/`` through the module constant ``PN_CONTENT_URL``, so both are
set for the duration of the call and restored afterwards.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

from paramstack.errors import InvalidInput, NotFound, UpstreamError

PHYSIONET_URL = "https://physionet.org"
Progress = Callable[[int, int, str], None]  # (records done, records in all, last record)


@contextlib.contextmanager
def _physionet_at(base_url: str) -> Iterator[None]:
    from wfdb.io import download

    base = base_url.rstrip("/")
    saved = (download.config.db_index_url, download.PN_CONTENT_URL)
    download.set_db_index_url(f"{base}/files/")
    download.PN_CONTENT_URL = f"{base}/content/"
    try:
        yield
    finally:
        download.set_db_index_url(saved[0])
        download.PN_CONTENT_URL = saved[1]


def download_database(
    target: Path,
    database: str = "mitdb",
    *,
    records: list[str] | None = None,
    base_url: str = PHYSIONET_URL,
    progress: Progress | None = None,
) -> list[str]:
    """Fetch ``records`` (default: the database's RECORDS list) with their annotations into
    ``target``; returns the record names. Unreachable server → UpstreamError; unknown
    database or record → NotFound."""
    import requests
    import wfdb
    from wfdb.io._url import NetFileNotFoundError

    if not database or "/" in database or database.startswith("."):
        raise InvalidInput(f"bad database name {database!r} (e.g. mitdb)", param="database")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with _physionet_at(base_url), contextlib.redirect_stdout(io.StringIO()):
            names = records or list(wfdb.get_record_list(database))
            for done, name in enumerate(names, start=1):
                wfdb.dl_database(database, dl_dir=str(target), records=[name], annotators="all")
                if progress is not None:
                    progress(done, len(names), name)
    except requests.ConnectionError as exc:
        raise UpstreamError(
            f"cannot reach PhysioNet at {base_url} ({type(exc).__name__}); download on a "
            "machine with internet access and copy the directory, or pass --base-url for "
            "a mirror"
        ) from exc
    except (NetFileNotFoundError, FileNotFoundError, ValueError) as exc:
        raise NotFound(f"{database}: not found at {base_url}: {exc}") from exc
    return names
