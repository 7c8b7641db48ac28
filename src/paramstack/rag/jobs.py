"""Background ingestion jobs: embedding is slow (a few passages per second per core), so the
gateway never embeds documents on the request path; it queues a job and answers 202.

Jobs run one at a time on one worker thread (the embedder is CPU-bound; parallel jobs would
only fight for the same cores). Their status lives in memory, keyed by a random id and the
owning tenant: a job id from another tenant is indistinguishable from an unknown one. Status
is lost on restart, the store is not (ingestion is idempotent: re-submit to resume).
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from paramstack.errors import NotFound, ParamstackError
from paramstack.rag.index import RagIndex
from paramstack.rag.stores.protocol import Store
from paramstack.rag.types import Document

MAX_JOBS_KEPT = 1000


@dataclass
class Job:
    id: str
    tenant: str
    collection: str
    status: str = "queued"  # queued | running | succeeded | failed
    documents: int = 0
    done: int = 0
    chunks: int = 0
    skipped: int = 0
    replaced: int = 0
    chunks_per_s: float = 0.0
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("tenant")
        return {"object": "rag.job", **data}


class IngestJobs:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")

    def submit(
        self, tenant: str, collection: str, docs: list[Document], options: dict[str, Any]
    ) -> Job:
        index = RagIndex(self.store, tenant, collection)
        index.embedder(options.pop("embedder", None))  # refuse a mismatched embedder now, not later
        job = Job(secrets.token_hex(12), tenant, collection, documents=len(docs))
        with self._lock:
            if len(self._jobs) >= MAX_JOBS_KEPT:  # forget the oldest finished jobs
                for old in sorted(self._jobs.values(), key=lambda j: j.created_at)[:100]:
                    if old.finished_at is not None:
                        self._jobs.pop(old.id, None)
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, index, docs, options)
        return job

    def _run(
        self, job: Job, index: RagIndex, docs: list[Document], options: dict[str, Any]
    ) -> None:
        job.status = "running"

        def on_doc(_doc: Document, n: int) -> None:
            job.done += 1
            job.chunks += n

        try:
            stats = index.ingest(docs, on_doc=on_doc, **options)
            job.skipped, job.replaced = stats.skipped, stats.replaced
            job.chunks_per_s = round(stats.chunks_per_s, 2)
            job.status = "succeeded"
        except ParamstackError as exc:
            job.status, job.error = "failed", exc.message
        except Exception as exc:  # a worker must record failure, never die silently
            job.status, job.error = "failed", f"{type(exc).__name__}: internal error"
        finally:
            job.finished_at = time.time()

    def get(self, tenant: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant:
            raise NotFound(f"no ingestion job {job_id!r}", code="job_not_found")
        return job

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()
