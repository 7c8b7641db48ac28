"""The hybrid router: a virtual public model (``auto``) that picks a real one per request.

Decision: the ``complexity`` classifier scores the conversation; ``simple`` goes to one model
(usually local), ``medium`` to a weighted split that is sticky per user (the request's
``user``, else the API key), ``complex`` to another (usually an external API). The header
``x-paramstack-route: local|external|<model>`` forces a target and turns the fallback off: a
caller who forces ``local`` may be keeping data in-house, so it never silently goes out.

Fallback: the chosen model's backend retries on its own (``max_retries``, backoff, breaker);
when it still fails with a 5xx-class error (unavailable, timeout, open circuit, broken
answer) the next model of ``fallback`` is tried. Caller mistakes (4xx) never fall back. A
stream may fall back only until its first chunk: the serving layer sends nothing before it,
so after it the stream is the client's and an error goes in-band.

Accounting stays exact: one reservation, sized for the largest output bound among the
candidates, is made before the first attempt and settled once, by the serving layer, with
the usage of the attempt that answered. The decision (score, band, chosen model, attempts,
fallback reason, estimated cost on each candidate from the tenant's price book) is the
``router`` key of the ledger row's ``routing`` JSON, and Prometheus counts decisions and
fallbacks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from paramstack.backends.protocol import ChatChunk, ChatResult
from paramstack.errors import InvalidInput, ParamstackError, Unavailable, UpstreamError
from paramstack.gateway.complexity import Complexity, ComplexityClassifier, ComplexityConfig
from paramstack.gateway.model_table import ModelRoute, ModelTable
from paramstack.gateway.openai_protocol import ChatCompletionRequest
from paramstack.gateway.router_spec import RouterSpec
from paramstack.gateway.telemetry import LlmMetrics
from paramstack.gateway.token_budget import chat_bound
from paramstack.gateway.tracing import span
from paramstack.registry.key_ring import Principal

if TYPE_CHECKING:
    from paramstack.gateway.serving_call import Call
    from paramstack.gateway.serving_chat import OpenAIServing

ROUTE_HEADER = "x-paramstack-route"
# Failures another model may fix; a 4xx (the request itself) would fail everywhere.
FALLBACK_ERRORS = (UpstreamError, Unavailable)


@dataclass
class RoutingRecord:
    """The ``router`` entry of the ledger row's ``routing`` JSON (orjson serialises it as it
    stands when the row is written, attempts included)."""

    router: str
    score: float | None
    band: str
    chosen: str
    forced: str | None
    estimated_cost: dict[str, str | None]
    currency: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    fallback_reason: str | None = None

    def attempt(self, model: str, status: str, started: float) -> None:
        ms = round((time.perf_counter() - started) * 1000, 2)
        self.attempts.append({"model": model, "status": status, "ms": ms})


def sticky_pick(weights: dict[str, float], key: str) -> str:
    """A fixed model per (split, user): the user's hash position in the cumulative weights."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64 * sum(weights.values())
    for model, weight in weights.items():
        point -= weight
        if point < 0:
            return model
    return next(reversed(weights))  # float rounding at the very top


class HybridRouter:
    def __init__(self, spec: RouterSpec, models: ModelTable, metrics: LlmMetrics | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.metrics = metrics
        config = ComplexityConfig.from_yaml(
            models.base / spec.complexity if spec.complexity else None
        )
        if spec.thresholds is not None:
            config = config.model_copy(update={"thresholds": spec.thresholds})
        self.classifier = ComplexityClassifier(config)
        self.models = models
        self.routes: dict[str, ModelRoute] = {}
        for target in spec.targets():
            try:
                self.routes[target] = models.resolve(target, "chat")
            except ParamstackError as exc:
                raise InvalidInput(
                    f"router {spec.name!r}: target {target!r}: {exc.message}", param="routers"
                ) from exc

    @property
    def default_route(self) -> ModelRoute:
        """Names the call until ``decide`` has run (a refused request's ledger row)."""
        return self.routes[self.spec.simple]

    def _forced(self, hint: str) -> ModelRoute:
        name = {"local": self.spec.local_model, "external": self.spec.external_model}.get(hint)
        try:
            return self.routes.get(name or hint) or self.models.resolve(hint, "chat")
        except ParamstackError as exc:
            raise InvalidInput(
                f"{ROUTE_HEADER} must be local, external or a chat model: {exc.message}",
                code="invalid_route",
                param=ROUTE_HEADER,
            ) from exc

    def decide(
        self, req: ChatCompletionRequest, principal: Principal, hint: str | None
    ) -> tuple[list[ModelRoute], Complexity]:
        """The models to try, in order, and the complexity they were chosen by."""
        messages = [m.model_dump() for m in req.messages]
        complexity = self.classifier.classify(messages)
        if hint:
            return [self._forced(hint.strip())], complexity
        if complexity.band == "simple":
            chosen = self.spec.simple
        elif complexity.band == "complex":
            chosen = self.spec.complex
        else:
            user = req.user or f"key:{principal.key_id}"
            chosen = sticky_pick(self.spec.medium, f"{self.name}:{user}")
        rest = [m for m in self.spec.fallback_models if m != chosen]
        adapter = principal.tenant.default_adapter  # a local base answers with the tenant's own
        chain = [self.routes[m] for m in [chosen, *dict.fromkeys(rest)]]
        return [self.models.with_adapter(r, adapter) for r in chain], complexity

    async def chat(
        self,
        serving: OpenAIServing,
        call: Call,
        req: ChatCompletionRequest,
        body_bytes: int,
        hint: str | None,
    ) -> Response:
        with span("routing"):
            chain, complexity = self.decide(req, call.principal, hint)
        body = req.model_dump(exclude_unset=True)
        client_limit = req.max_completion_tokens or req.max_tokens
        limits = {r.name: client_limit or r.max_output_tokens for r in chain}
        tenant = call.principal.tenant
        estimate: dict[str, str | None] = {}
        for route in {**self.routes, **{r.name: r for r in chain}}.values():  # + a forced one
            price = tenant.price(route.name)
            limit = client_limit or route.max_output_tokens
            cost = price.cost(complexity.context_tokens, limit) if price else None
            estimate[route.name] = f"{cost:f}" if isinstance(cost, Decimal) else None
        record = RoutingRecord(
            router=self.name,
            score=complexity.score,
            band=complexity.band,
            chosen=chain[0].name,
            forced=hint.strip() if hint else None,
            estimated_cost=estimate,
            currency=tenant.currency,
        )
        call.route, call.routing["router"] = chain[0], record
        if self.metrics is not None:
            band = "forced" if hint else complexity.band
            self.metrics.route_decisions.labels(self.name, band, chain[0].name).inc()
        session = await serving._guard_prompt(call, body)
        # retrieval after the decision: the score reads the client's messages, so retrieved
        # context never moves a request to a costlier model by itself
        context = await serving._ground(call, body, session)
        bound = chat_bound(body_bytes, len(req.messages)) + context
        await call.admit(bound + req.n * max(limits.values()))

        def attempt_body(route: ModelRoute) -> dict[str, Any]:
            out = {**body, "model": route.upstream_model}
            if client_limit is None:
                out["max_tokens"] = limits[route.name]
            return out

        attempts = _Attempts(self, call, chain, record, attempt_body)
        if not req.stream:
            return await serving._whole(call, attempts.whole, body, session)
        include = bool(req.stream_options and req.stream_options.include_usage)
        guard = serving._stream_guard(call, session)
        return await serving._stream(call, attempts.stream(), include, guard)

    def fell_back(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.route_fallbacks.labels(self.name, reason).inc()


class _Attempts:
    """The fallback loop, as a whole call or as a stream; ``call.route`` always names the
    model being tried, so the ledger row, metrics and signature name the one that answered."""

    def __init__(
        self,
        router: HybridRouter,
        call: Call,
        chain: list[ModelRoute],
        record: RoutingRecord,
        body_for: Callable[[ModelRoute], dict[str, Any]],
    ) -> None:
        self.router, self.call, self.chain = router, call, chain
        self.record, self.body_for = record, body_for

    def _failed(self, route: ModelRoute, exc: ParamstackError, started: float) -> bool:
        """Record a failed attempt; True when the next model should be tried."""
        self.record.attempt(route.name, exc.code, started)
        retry = isinstance(exc, FALLBACK_ERRORS) and route is not self.chain[-1]
        if retry:
            self.record.fallback_reason = self.record.fallback_reason or exc.code
            self.router.fell_back(exc.code)
        return retry

    async def whole(self, _body: dict[str, Any]) -> ChatResult:
        for route in self.chain:
            self.call.route, started = route, time.perf_counter()
            try:
                result = await route.backend.chat(self.body_for(route))
            except ParamstackError as exc:
                if self._failed(route, exc, started):
                    continue
                raise
            self.record.attempt(route.name, "ok", started)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def stream(self) -> AsyncIterator[ChatChunk]:
        for route in self.chain:
            self.call.route, started = route, time.perf_counter()
            chunks = route.backend.stream_chat(self.body_for(route))
            try:
                try:
                    first = await anext(chunks, None)
                except ParamstackError as exc:
                    if self._failed(route, exc, started):
                        continue
                    raise
                self.record.attempt(route.name, "started", started)  # outcome: the row's status
                if first is not None:
                    yield first
                async for chunk in chunks:  # the client has bytes now: no more fallback
                    yield chunk
                return
            finally:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()


class RouterTable:
    """Router name -> router, built once from the model table's ``routers:``."""

    def __init__(self, models: ModelTable, metrics: LlmMetrics | None) -> None:
        self._routers: dict[str, HybridRouter] = {}
        for spec in models.routers:
            if spec.name in self._routers or spec.name in models.names():
                raise InvalidInput(
                    f"router {spec.name!r} clashes with another name", param="routers"
                )
            self._routers[spec.name] = HybridRouter(spec, models, metrics)

    def get(self, name: str) -> HybridRouter | None:
        return self._routers.get(name)

    def specs(self) -> list[RouterSpec]:
        return [router.spec for router in self._routers.values()]
