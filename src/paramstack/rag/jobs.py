"""Background ingestion jobs: embedding is slow, so the gateway never embeds documents on the
request path; it queues a job and answers 202.

Jobs run one at a time on one worker thread (the embedder is CPU-bound; parallel jobs would
only fight for the same cores). Their status lives in the ``rag_jobs`` table, keyed by a random
id and the owning tenant, so it survives a restart and every gateway process sees it; a job id
of another tenant is indistinguishable from an unknown one. The documents themselves are not
kept: a job whose process died (same host, pid gone) is marked failed when a process starts on
that host, and re-submitting it resumes (ingestion skips unchanged documents).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from paramstack.errors import NotFound, ParamstackError
from paramstack.rag.index import RagIndex
from paramstack.rag.stores.protocol import Store
from paramstack.rag.types import Document
from paramstack.store.engine import transaction
from paramstack.store.rag_tables import RagJob

PROGRESS_EVERY_S = 1.0  # progress rows are written at most this often while a job runs
INTERRUPTED = "interrupted: the gateway stopped while it ran; re-submit to resume"


def public(job: RagJob) -> dict[str, Any]:
    """What a client sees (never the tenant: it is the caller's own)."""
    return {
        "object": "rag.job",
        "id": job.id,
        "collection": job.collection,
        "status": job.status,
        "documents": job.documents,
        "done": job.done,
        "chunks": job.chunks,
        "skipped": job.skipped,
        "replaced": job.replaced,
        "chunks_per_s": job.chunks_per_s,
        "error": job.error,
        "created_at": _epoch(job.created_at),
        "finished_at": _epoch(job.finished_at),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class IngestJobs:
    def __init__(self, store: Store, factory: sessionmaker[Session]) -> None:
        self.store = store
        self._factory = factory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Jobs of a dead process on this host can never finish: say so."""
        host = self.worker.rsplit(":", 1)[0]
        with transaction(self._factory) as s:
            rows = s.scalars(
                select(RagJob).where(
                    RagJob.status.in_(("queued", "running")), RagJob.worker.startswith(f"{host}:")
                )
            )
            for row in rows:
                if row.worker != self.worker and not _alive(int(row.worker.rsplit(":", 1)[1])):
                    row.status, row.error = "failed", INTERRUPTED
                    row.finished_at = datetime.now(UTC)

    def submit(
        self, tenant: str, collection: str, docs: list[Document], options: dict[str, Any]
    ) -> dict[str, Any]:
        index = RagIndex(self.store, tenant, collection)
        index.embedder(options.pop("embedder", None))  # refuse a mismatched embedder now, not later
        job_id = secrets.token_hex(12)
        with transaction(self._factory) as s:
            row = RagJob(
                id=job_id,
                tenant_id=tenant,
                collection=collection,
                status="queued",
                worker=self.worker,
                documents=len(docs),
                done=0,
                chunks=0,
                skipped=0,
                replaced=0,
                chunks_per_s=0.0,
            )
            s.add(row)
            s.flush()
            out = public(row)
        self._pool.submit(self._run, job_id, index, docs, options)
        return out

    def _set(self, job_id: str, **values: Any) -> None:
        with transaction(self._factory) as s:
            s.execute(update(RagJob).where(RagJob.id == job_id).values(**values))

    def _run(
        self, job_id: str, index: RagIndex, docs: list[Document], options: dict[str, Any]
    ) -> None:
        self._set(job_id, status="running")
        progress = {"done": 0, "chunks": 0}
        last = time.monotonic()

        def on_doc(_doc: Document, n: int) -> None:
            nonlocal last
            progress["done"] += 1
            progress["chunks"] += n
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                self._set(job_id, **progress)

        final: dict[str, Any] = {}
        try:
            stats = index.ingest(docs, on_doc=on_doc, **options)
            final = {"status": "succeeded", "skipped": stats.skipped, "replaced": stats.replaced,
                     "chunks_per_s": round(stats.chunks_per_s, 2)}  # fmt: skip
        except ParamstackError as exc:
            final = {"status": "failed", "error": exc.message}
        except Exception as exc:  # a worker must record failure, never die silently
            final = {"status": "failed", "error": f"{type(exc).__name__}: internal error"}
        finally:
            self._set(job_id, **progress, **final, finished_at=datetime.now(UTC))

    def get(self, tenant: str, job_id: str) -> dict[str, Any]:
        with transaction(self._factory) as s:
            row = s.scalar(select(RagJob).where(RagJob.id == job_id, RagJob.tenant_id == tenant))
            if row is None:
                raise NotFound(f"no ingestion job {job_id!r}", code="job_not_found")
            return public(row)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()
