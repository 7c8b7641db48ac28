"""One admitted OpenAI call: its admission, settle and single usage-ledger row.

Kept apart from ``serving_chat`` so the endpoint families read as one straight line each; the
ledger row and the Prometheus observation are written at the same point, so they always count
the same requests.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from paramstack.backends.protocol import Usage
from paramstack.errors import LimitExceeded
from paramstack.gateway.limit_types import Admission, rules_for
from paramstack.gateway.limits import SyncLimiter
from paramstack.gateway.model_table import ModelRoute
from paramstack.gateway.tracing import span
from paramstack.gateway.traffic import Pick
from paramstack.gateway.usage_ledger import ledger_row
from paramstack.registry.key_ring import Principal
from paramstack.store.tenant_tables import UsageRecord

if TYPE_CHECKING:
    from paramstack.gateway.rag_context import Grounding
    from paramstack.gateway.serving_chat import OpenAIServing


class Call:
    """One admitted request: what the ledger row and the settle need, written exactly once."""

    def __init__(
        self,
        serving: OpenAIServing,
        principal: Principal,
        route: ModelRoute,
        request_id: str,
        input_sha256: str,
        pick: Pick | None = None,
    ) -> None:
        self.serving = serving
        self.principal = principal
        self.route = route
        self.request_id = request_id
        self.input_sha256 = input_sha256
        self.t0 = time.perf_counter()
        self.admission = Admission()
        self.pick = pick
        # the ledger's routing JSON: each routing step adds its own key (orjson-serialisable)
        self.routing: dict[str, Any] = {"traffic": pick.routing()} if pick else {}
        self.grounding: Grounding | None = None  # retrieved chunks in the prompt (RAG)

    async def admit(self, tokens: int) -> None:
        rates, quotas = rules_for(self.principal)
        try:
            with span("limits"):
                self.admission = await self.serving.limiter.admit(rates, quotas, tokens=tokens)
        except LimitExceeded as exc:
            self.record(None, exc.code, exc.http_status)
            if self.serving.metrics is not None:
                self.serving.metrics.observe_rejection(self.route.name, exc.code)
            raise

    async def finish(
        self, usage: Usage | None, status: str, status_code: int, *, started: bool = False
    ) -> None:
        """Write the ledger row and settle to the real usage. A call that failed before any
        output settles to 0; a stream cut after it started, with no usage known, keeps its
        whole reservation, so a quota is never undercounted. The settle is shielded: it also
        runs when the client went away and the request is being cancelled."""
        row = self.record(usage, status, status_code)
        metrics = self.serving.metrics
        if metrics is not None:
            metrics.observe_latency(self.route.name, time.perf_counter() - self.t0)
            self.serving.observe_breakers()
        if self.pick is not None and self.serving.traffic is not None:
            self.serving.traffic.observe(
                self.pick, time.perf_counter() - self.t0, status_code, row["cost"], row["currency"]
            )
        reservation = self.admission.reservation
        if reservation is not None:
            spent = reservation.tokens if started else 0  # no usage known: see above
            if usage is not None:
                spent = usage.total_tokens
            limiter = self.serving.limiter
            if isinstance(limiter, SyncLimiter):  # in-process or LMDB: no await, so nothing
                limiter.settle_now(reservation, spent)  # can cancel it: no cancel scope (~4 µs)
            else:
                with anyio.CancelScope(shield=True):
                    await limiter.settle(reservation, spent)

    def record(self, usage: Usage | None, status: str, status_code: int) -> dict[str, Any]:
        row = ledger_row(
            self.principal,
            request_id=self.request_id,
            model=self.route.name,
            backend=self.route.backend.kind,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            status=status,
            status_code=status_code,
            routing=orjson.dumps(self.routing).decode() if self.routing else None,
        )
        self.serving.logs.submit(UsageRecord, row)
        if self.serving.metrics is not None:  # after submit: a full queue's 503 is not counted
            self.serving.metrics.observe_call(
                model=self.route.name,
                status_code=status_code,
                tenant=row["tenant_id"],
                currency=row["currency"],
                tokens_in=row["tokens_in"],
                tokens_out=row["tokens_out"],
                cost=row["cost"],
            )
        return row
