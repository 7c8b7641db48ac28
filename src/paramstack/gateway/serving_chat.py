"""The OpenAI endpoint families as one service held on ``app.state.openai`` (vLLM's ``serving_*``).

Every call is one straight line: resolve the model -> admit against the principal's rate
limits while reserving an upper bound of its tokens -> call the backend -> settle the
reservation to the backend's own token count (0 when the call failed) -> one usage-ledger row
through the batched log writer, observed by the Prometheus metrics at the same point (so the
two always count the same requests). The reservation bound (see ``token_budget``) is why
concurrent requests can never overspend a daily quota; the settled count is what is billed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from paramstack.attest.outputs import completion_output, completion_texts
from paramstack.backends.protocol import ChatChunk, ChatResult, Usage
from paramstack.errors import GuardBlocked, ParamstackError
from paramstack.gateway.attestation import Attestor, audit_block
from paramstack.gateway.chat_guard import ChatGuard, StreamGuard, run_guard
from paramstack.gateway.limits import Limiter
from paramstack.gateway.llm_router import RouterTable
from paramstack.gateway.log_writer import LogWriter
from paramstack.gateway.model_table import ModelRoute, ModelTable
from paramstack.gateway.openai_protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
    StreamOptions,
)
from paramstack.gateway.rag_context import ChatRetriever
from paramstack.gateway.serving_call import Call
from paramstack.gateway.sse_stream import sse_events
from paramstack.gateway.telemetry import LlmMetrics
from paramstack.gateway.token_budget import chat_bound, embedding_bound, text_bound
from paramstack.gateway.tracing import span
from paramstack.gateway.traffic import Pick, TrafficTable
from paramstack.guard.pii import MaskSession
from paramstack.registry.key_ring import Principal

JSON = "application/json"


class OpenAIServing:
    def __init__(
        self,
        models: ModelTable,
        limiter: Limiter,
        logs: LogWriter,
        guard: ChatGuard | None = None,
        attestor: Attestor | None = None,
        metrics: LlmMetrics | None = None,
        traffic: TrafficTable | None = None,
    ) -> None:
        self.models = models
        self.traffic = traffic
        self.limiter = limiter
        self.logs = logs
        self.guard = guard
        self.attestor = attestor
        self.created = int(time.time())
        self.metrics = metrics
        self.routers = RouterTable(models, metrics)
        self._published: dict[str, str] = {}  # breaker states already set on the gauge
        self.retriever: ChatRetriever | None = None  # set by the app: chat retrieval (RAG)
        if metrics is not None:
            models.observe_retries(lambda model: metrics.retries.labels(model).inc())

    def observe_breakers(self) -> None:
        """Publish every model's circuit state: after each call (where it changes) and at
        each scrape (open turns half-open with time alone)."""
        if self.metrics is not None:
            for model, state in self.models.breaker_states().items():
                if self._published.get(model) != state:  # a gauge keeps its last value
                    self.metrics.observe_breaker(model, state)
                    self._published[model] = state

    def attest(self, call: Call, texts: list[str]) -> dict[str, Any] | None:
        """Sign what the caller received (after the guard); None when signing is off."""
        if self.attestor is None:
            return None
        with span("attestation"):
            return self.attestor.sign(
                model=call.route.name,
                version=call.route.upstream_model,
                input_sha256=call.input_sha256,
                output=completion_output(
                    texts, call.grounding.chunk_refs if call.grounding else None
                ),
                tenant=call.principal.tenant.id,
                policy_version=self.guard.for_tenant(call.principal.tenant).guard.version
                if self.guard
                else "none",
                request_id=call.request_id,
            )

    async def _guard_prompt(self, call: Call, body: dict[str, Any]) -> MaskSession | None:
        """Before admission: a blocked prompt costs no quota, but still gets its ledger row."""
        if self.guard is None:
            return None
        with self._recorded(call), span("guard.prompt"):
            tenant = call.principal.tenant
            guard = self.guard.for_tenant(tenant)
            return await run_guard(guard.guard, guard.guard_prompt, body, tenant.id)

    async def _ground(self, call: Call, body: dict[str, Any], session: MaskSession | None) -> int:
        """Retrieval (RAG) into ``body``; returns the context's bytes for the reservation."""
        if self.retriever is not None:
            with self._recorded(call):  # a chunk carrying an injection blocks, like a prompt
                call.grounding = await self.retriever.ground(
                    call.principal, body, self.guard, session
                )
        return call.grounding.prompt_bound if call.grounding else 0

    @contextmanager
    def _recorded(self, call: Call) -> Iterator[None]:
        """A blocked prompt (or retrieved chunk) gets its ledger row and audit entry."""
        try:
            yield
        except GuardBlocked as exc:
            call.record(None, exc.code, exc.http_status)
            audit_block(self.logs, exc, tenant=call.principal.tenant.id, request_id=call.request_id)
            raise

    def _stream_guard(self, call: Call, session: MaskSession | None) -> StreamGuard | None:
        if self.guard is None or session is None:
            return None
        return self.guard.for_tenant(call.principal.tenant).stream(
            session, call.principal.tenant.domain
        )

    def list_models(self) -> ModelList:
        cards = [
            ModelCard(id=r.name, created=self.created, owned_by=r.owned_by)
            for r in self.models.routes()
        ] + [
            ModelCard(id=r.name, created=self.created, owned_by=r.owned_by)
            for r in self.routers.specs()
        ]
        known = {card.id for card in cards}
        splits = self.traffic.splits() if self.traffic is not None else []
        cards += [
            ModelCard(id=s.name, created=self.created, owned_by="paramstack")
            for s in splits
            if s.name not in known
        ]
        return ModelList(data=cards)

    def _pick(self, model: str, user: str | None, principal: Principal) -> Pick | None:
        """A traffic split (A/B, canary) picks its sticky arm before the model is resolved."""
        if self.traffic is None:
            return None
        return self.traffic.pick(model, user or principal.key_prefix)

    def _resolve(
        self, model: str, capability: str, user: str | None, principal: Principal
    ) -> tuple[ModelRoute, Pick | None]:
        pick = self._pick(model, user, principal)
        return self.models.resolve(pick.target if pick else model, capability), pick

    async def chat(
        self,
        principal: Principal,
        req: ChatCompletionRequest,
        body_bytes: int,
        request_id: str,
        input_sha256: str = "",
        route_hint: str | None = None,
    ) -> Response:
        pick = self._pick(req.model, req.user, principal)
        target = pick.target if pick else req.model
        router = self.routers.get(target)
        if router is not None:  # a virtual model: ``llm_router`` picks the real one
            route = router.default_route
            call = Call(self, principal, route, request_id, input_sha256, pick)
            return await router.chat(self, call, req, body_bytes, route_hint)
        with span("routing"):
            route = self.models.resolve(target, "chat")
            route = self.models.with_adapter(route, principal.tenant.default_adapter)
        body = req.model_dump(exclude_unset=True)
        limit = req.max_completion_tokens or req.max_tokens
        if limit is None:
            limit = route.max_output_tokens
            body["max_tokens"] = limit
        body["model"] = route.upstream_model
        call = Call(self, principal, route, request_id, input_sha256, pick)
        session = await self._guard_prompt(call, body)
        context = await self._ground(call, body, session)
        await call.admit(chat_bound(body_bytes, len(req.messages)) + context + req.n * limit)
        backend = route.backend
        stream = backend.stream_chat if req.stream else None
        return await self._answer(call, body, session, backend.chat, stream, req.stream_options)

    async def completions(
        self,
        principal: Principal,
        req: CompletionRequest,
        body_bytes: int,
        request_id: str,
        input_sha256: str = "",
    ) -> Response:
        route, pick = self._resolve(req.model, "completions", req.user, principal)
        route = self.models.with_adapter(route, principal.tenant.default_adapter)
        body = req.model_dump(exclude_unset=True)
        if req.max_tokens is None:
            body["max_tokens"] = route.max_output_tokens
        body["model"] = route.upstream_model
        prompts = 1 if isinstance(req.prompt, str) else len(req.prompt)
        call = Call(self, principal, route, request_id, input_sha256, pick)
        session = await self._guard_prompt(call, body)
        await call.admit(text_bound(body_bytes) + prompts * req.n * body["max_tokens"])
        backend = route.backend
        stream = backend.stream_completions if req.stream else None
        return await self._answer(
            call, body, session, backend.completions, stream, req.stream_options
        )

    async def embeddings(
        self,
        principal: Principal,
        req: EmbeddingRequest,
        body_bytes: int,
        request_id: str,
        input_sha256: str = "",
    ) -> Response:
        route, pick = self._resolve(req.model, "embeddings", req.user, principal)
        body = req.model_dump(exclude_unset=True)
        body["model"] = route.upstream_model
        call = Call(self, principal, route, request_id, input_sha256, pick)
        await self._guard_prompt(call, body)
        await call.admit(embedding_bound(req.input, body_bytes))
        return await self._whole(call, route.backend.embeddings, body, None, signed=False)

    async def _answer(
        self,
        call: Call,
        body: dict[str, Any],
        session: MaskSession | None,
        whole: Callable[[dict[str, Any]], Awaitable[ChatResult]],
        stream: Callable[[dict[str, Any]], AsyncIterator[ChatChunk]] | None,
        options: StreamOptions | None,
    ) -> Response:
        """Chat and completions alike: a whole response, or a stream when ``stream`` is set."""
        if stream is None:
            return await self._whole(call, whole, body, session)
        include = bool(options and options.include_usage)
        return await self._stream(call, stream(body), include, self._stream_guard(call, session))

    async def _whole(
        self,
        call: Call,
        method: Callable[[dict[str, Any]], Awaitable[ChatResult]],
        body: dict[str, Any],
        session: MaskSession | None,
        *,
        signed: bool = True,
    ) -> Response:
        usage: Usage | None = None  # known once the upstream answered: a blocked answer is billed
        try:
            with span("backend"):
                result = await method(body)
            usage = result.usage
            if self.guard is not None and session is not None:
                guard = self.guard.for_tenant(call.principal.tenant)
                with span("guard.answer"):
                    domain = call.principal.tenant.domain
                    await run_guard(guard.guard, guard.guard_answer, result.body, session, domain)
        except ParamstackError as exc:
            await call.finish(usage, exc.code, exc.http_status)
            raise
        except BaseException:  # cancelled (client gone) or a bug: still settle and record
            await call.finish(None, "failed", 500)
            raise
        await call.finish(result.usage, "ok", 200)
        result.body["model"] = call.route.name
        headers = call.admission.headers()
        attestation = self.attest(call, completion_texts(result.body)) if signed else None
        if attestation is not None:
            result.body["attestation"] = attestation
            headers["x-attestation-kid"] = attestation["kid"]
        if call.grounding is not None:
            result.body["rag"] = call.grounding.extension()
        return Response(orjson.dumps(result.body), headers=headers, media_type=JSON)

    async def _stream(
        self,
        call: Call,
        chunks: AsyncIterator[ChatChunk],
        include_usage: bool,
        guard: StreamGuard | None,
    ) -> Response:
        """Wait for the first chunk before answering, so an upstream that fails to start is a
        proper HTTP error (502/503) rather than a 200 with a broken stream."""
        try:
            with span("backend"):
                first = await anext(chunks, None)
        except ParamstackError as exc:
            await call.finish(None, exc.code, exc.http_status)
            raise
        except BaseException:
            await call.finish(None, "failed", 500)
            raise
        return StreamingResponse(
            sse_events(call, first, chunks, include_usage, guard),
            media_type="text/event-stream",
            headers={**call.admission.headers(), "cache-control": "no-cache"},
        )
