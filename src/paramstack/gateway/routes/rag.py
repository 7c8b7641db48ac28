"""``/v1/rag/*``: a tenant's retrieval collection over HTTP.

The tenant is the authenticated key's, never a request field (bodies forbid unknown fields,
so a ``tenant`` in the body is a 400, not silently ignored). Ingestion answers 202 with a job;
``GET /v1/rag/jobs/{id}`` reports it. The RAG extra is imported on first use, so the gateway
starts without it. Blocking store and embedder calls run in worker threads.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from paramstack.errors import Forbidden, InvalidInput, Unavailable
from paramstack.gateway.auth import CurrentPrincipal
from paramstack.gateway.routes.openai import ERRORS
from paramstack.rag.settings import check_api_embedder
from paramstack.registry.key_ring import Principal

router = APIRouter(prefix="/v1/rag", tags=["rag"])
_LOCK = threading.Lock()
MAX_DOCS = 1000
MAX_TEXT = 2_000_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryBody(Strict):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["hybrid", "lexical", "dense"] = "hybrid"
    filters: dict[str, str | int | bool] = Field(default_factory=dict)
    min_score: float | None = None
    collection: str | None = Field(None, description="Default: the tenant's rag_collection.")


class DocumentIn(Strict):
    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    source: str | None = None
    metadata: dict[str, str | int | bool] = Field(default_factory=dict)


class IngestBody(Strict):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCS)
    collection: str | None = None
    embedder: str | None = Field(None, description="Only on a new collection; else must match.")
    chunk_size: int = Field(800, ge=50, le=8000)
    overlap: int = Field(100, ge=0, le=4000)
    scrub_pii: bool = False


def rag_state(request: Request) -> Any:
    """The process's store and job runner, opened on first use."""
    return open_rag(request.app)


def open_rag(app: Any) -> Any:
    state = app.state
    with _LOCK:
        if getattr(state, "rag", None) is None:
            try:
                from paramstack.rag.jobs import IngestJobs
                from paramstack.rag.settings import store_url
                from paramstack.rag.stores.protocol import open_store
            except ImportError as exc:
                raise Unavailable(
                    "retrieval needs the rag extra (pip install paramstack[rag])"
                ) from exc
            state.rag = IngestJobs(open_store(store_url(state.settings.home)), state.factory)
        return state.rag


def require_admin(principal: Principal) -> None:
    """Changing a tenant's documents needs one of its admin keys; querying needs any key."""
    if not principal.is_admin:
        raise Forbidden(
            "ingesting or deleting documents needs an admin key of the tenant"
            " (paramstack keys create TENANT --role admin)",
            code="admin_key_required",
        )


def collection_of(principal: Principal, requested: str | None) -> str:
    return requested or principal.tenant.rag_collection or "default"


@router.post(
    "/query", responses=ERRORS, summary="Retrieve cited chunks from the tenant's collection"
)
async def query(body: QueryBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    from paramstack.rag.index import RagIndex

    rag = rag_state(request)
    index = RagIndex(rag.store, principal.tenant.id, collection_of(principal, body.collection))
    hits = await to_thread.run_sync(
        lambda: index.query(
            body.query, k=body.k, mode=body.mode, filters=body.filters, min_score=body.min_score
        )
    )
    return {
        "object": "list",
        "collection": index.collection,
        "data": [h.citation() | {"text": h.text} for h in hits],
    }


@router.post("/documents", status_code=202, responses=ERRORS, summary="Queue an ingestion job")
async def ingest(body: IngestBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    from paramstack.rag.loaders import make_document

    require_admin(principal)
    if body.embedder is not None:
        check_api_embedder(body.embedder)
    if body.overlap >= body.chunk_size:
        raise InvalidInput("overlap must be smaller than chunk_size", param="overlap")
    rag = rag_state(request)
    docs = [make_document(d.id, d.text, d.source or d.id, d.metadata) for d in body.documents]
    options = {"embedder": body.embedder, "chunk_size": body.chunk_size,
               "overlap": body.overlap, "scrub_pii": body.scrub_pii}  # fmt: skip
    collection = collection_of(principal, body.collection)
    return await to_thread.run_sync(
        lambda: rag.submit(principal.tenant.id, collection, docs, options)
    )


@router.get("/jobs/{job_id}", responses=ERRORS, summary="Status of an ingestion job")
async def job_status(
    job_id: Annotated[str, Path(max_length=64)], request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    rag = rag_state(request)
    return await to_thread.run_sync(lambda: rag.get(principal.tenant.id, job_id))


@router.get("/documents", responses=ERRORS, summary="The tenant's documents and versions")
async def list_documents(
    request: Request, principal: CurrentPrincipal, collection: str | None = None
) -> dict[str, Any]:
    from paramstack.rag.index import check_name

    rag = rag_state(request)
    name = check_name(collection_of(principal, collection), "collection")
    docs = await to_thread.run_sync(lambda: rag.store.documents(principal.tenant.id, name))
    return {"object": "list", "collection": name,
            "data": [{"id": k, "version": v} for k, v in sorted(docs.items())]}  # fmt: skip


@router.delete("/documents/{doc_id:path}", responses=ERRORS, summary="Delete a document")
async def delete_document(
    doc_id: str, request: Request, principal: CurrentPrincipal, collection: str | None = None
) -> dict[str, Any]:
    from paramstack.rag.index import RagIndex

    require_admin(principal)
    rag = rag_state(request)
    index = RagIndex(rag.store, principal.tenant.id, collection_of(principal, collection))
    n = await to_thread.run_sync(lambda: index.delete(doc_id))
    return {"object": "rag.document.deleted", "id": doc_id, "deleted": True, "chunks": n}


async def close_rag(app: Any) -> None:
    """Finish the running ingestion job and close the store (called on shutdown)."""
    rag = getattr(app.state, "rag", None)
    if rag is not None:
        await to_thread.run_sync(rag.close)
