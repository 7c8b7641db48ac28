"""Retrieval for chat: decide (tenant policy + the request's ``rag`` field), retrieve, and put
the cited context into the prompt.

The request's ``rag`` extension field is removed before the body goes upstream. The chunks
used come back as ``rag.citations`` (a body field, or a final SSE event) and their ids and
versions are part of the signed output, so an attested answer proves what grounded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paramstack.errors import InvalidInput
from paramstack.gateway.chat_guard import ChatGuard
from paramstack.gateway.tracing import span
from paramstack.guard.pii import MaskSession
from paramstack.registry.key_ring import Principal

TEMPLATE = (
    "Answer using the numbered sources below when they are relevant, and cite them as [n]. "
    "If they do not contain the answer, say so rather than guessing.\n\n{sources}"
)


class RagRequest(BaseModel):
    """The per-request ``rag`` extension field of a chat completion."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    k: int = Field(4, ge=1, le=20)
    mode: str = Field("hybrid", pattern="^(hybrid|lexical|dense)$")
    collection: str | None = None
    filters: dict[str, str | int | bool] = Field(default_factory=dict)


@dataclass(frozen=True)
class Grounding:
    collection: str
    citations: list[dict[str, Any]]
    # UTF-8 bytes of the context message added to the prompt: the request body's byte bound
    # does not contain it, so the quota reservation adds it (see ``token_budget``)
    context_bytes: int = 0

    @property
    def prompt_bound(self) -> int:
        """Upper bound on the prompt tokens the retrieved context adds."""
        from paramstack.gateway.token_budget import PER_MESSAGE

        return self.context_bytes + PER_MESSAGE if self.citations else 0

    @property
    def chunk_refs(self) -> list[str]:
        """What the signature covers: ``doc_id#chunk@version`` of every chunk in the prompt."""
        return [f"{c['chunk_id']}@{c['version']}" for c in self.citations]

    def extension(self) -> dict[str, Any]:
        return {"collection": self.collection, "citations": self.citations}


def _question(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            return content
        if message.get("role") == "user" and isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class ChatRetriever:
    """Owned by the gateway; ``rag_state`` opens the store on first use."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def ground(
        self,
        principal: Principal,
        body: dict[str, Any],
        guard: ChatGuard | None = None,
        session: MaskSession | None = None,
    ) -> Grounding | None:
        """Pop ``body['rag']``; when retrieval applies, add the context message and return
        the grounding (None: the body goes upstream unchanged, apart from the popped field).
        With a ``guard``, each retrieved chunk is judged as a document, like tool output (PII
        masked in the caller's ``session``; ``GuardBlocked`` when it carries an injection), so
        an instruction planted in a tenant's document does not reach the model."""
        raw = body.pop("rag", None)
        if raw is None and principal.tenant.rag_policy not in ("always", "auto"):
            return None  # not asked for, not in force: what ``RagRequest()`` decides below
        try:
            req = RagRequest.model_validate(raw or {})
        except ValidationError as exc:
            raise InvalidInput(f"invalid rag field: {exc.errors()[0]['msg']}", param="rag") from exc
        tenant = principal.tenant
        policy = tenant.rag_policy
        wanted = req.enabled if req.enabled is not None else policy in ("always", "auto")
        question = _question(body.get("messages") or [])
        if not wanted or not question.strip():
            return None
        from paramstack.gateway.routes.rag import open_rag
        from paramstack.rag.fusion import DEFAULT_FUSION, RRF_K, Fusion
        from paramstack.rag.index import RagIndex

        store = open_rag(self.app).store
        collection = req.collection or tenant.rag_collection or "default"
        index = RagIndex(store, tenant.id, collection)
        # auto: ground only on chunks that both retrievers rank in their top k, which
        # equal-weight RRF expresses as a score floor of 2 / (K + k)
        auto = policy == "auto" and req.enabled is None
        floor = 2 / (RRF_K + req.k) if auto else None
        with span("retrieval"):
            hits = await to_thread.run_sync(
                lambda: index.query(
                    question[:4000], k=req.k, mode=req.mode, filters=req.filters,
                    min_score=floor if req.mode == "hybrid" else None,
                    fusion=Fusion("rrf", 1.0) if auto else DEFAULT_FUSION,
                )
            )  # fmt: skip
        if not hits:
            return None
        texts = [h.text for h in hits]
        if guard is not None:  # ~1 ms per kB and chunk: off the event loop, like retrieval
            screen = guard.for_tenant(principal.tenant).document_screen(
                session, principal.tenant.id
            )
            with span("guard.context"):
                texts = await to_thread.run_sync(lambda: [screen(h.text) for h in hits])
        sources = "\n\n".join(
            f"[{n}] ({h.source}, chunk {h.index})\n{text}"
            for n, (h, text) in enumerate(zip(hits, texts, strict=True), 1)
        )
        context = {"role": "system", "content": TEMPLATE.format(sources=sources)}
        messages = list(body.get("messages") or [])
        first_user = next((i for i, m in enumerate(messages) if m.get("role") != "system"), 0)
        body["messages"] = [*messages[:first_user], context, *messages[first_user:]]
        size = len(context["content"].encode()) + len(context["role"])
        return Grounding(collection, [h.citation() for h in hits], size)
