"""Backlog and integrity gauges the alert rules need: log-writer queues, dropped rows and the
audit chain's checkpoint lag.

Everything is read from memory (queue counts, the chain's cached head), so refreshing costs
no database query; the writer thread refreshes once per tick and ``/metrics`` once per scrape.
With several workers each refreshes its own values and Prometheus reads the worst one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from paramstack.gateway.log_writer import LogWriter

# Kinds always exported (at 0), so dashboards and alerts have a series before the first row.
WRITER_KINDS = ("inference_logs", "usage_ledger", "audit_entries")


class OpsMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.writer_pending = Gauge(
            "paramstack_log_writer_pending", "Rows queued for the batched writer, by kind "
            "(target table).", ["kind"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.writer_dropped = Counter(
            "paramstack_log_writer_dropped_rows", "Rows never written, by kind and reason "
            "(queue_full: refused at submit; database_refused; database_unavailable).",
            ["kind", "reason"], registry=r,
        )  # fmt: skip
        self.checkpoint_age = Gauge(
            "paramstack_audit_checkpoint_age_seconds", "Seconds since the newest signed "
            "audit-chain checkpoint (0 until the chain is in use with a key).",
            registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.entries_unsigned = Gauge(
            "paramstack_audit_entries_since_checkpoint", "Audit entries appended after the "
            "newest signed checkpoint.", registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.verdict_lookups = Gauge(
            "paramstack_guard_verdict_cache_lookups", "Prompt verdict cache lookups since each "
            "live guard was built, by result (hit: the prompt was not scanned again).",
            ["result"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        for kind in WRITER_KINDS:
            self.writer_pending.labels(kind).set(0)

    def rows_dropped(self, kind: str, reason: str, n: int) -> None:
        self.writer_dropped.labels(kind, reason).inc(n)

    def verdicts(self, hits: int, misses: int) -> None:
        self.verdict_lookups.labels("hit").set(hits)
        self.verdict_lookups.labels("miss").set(misses)

    def refresh(self, writer: LogWriter) -> None:
        queued = writer.pending_by_kind()
        for kind in {*WRITER_KINDS, *queued}:
            self.writer_pending.labels(kind).set(queued.get(kind, 0))
        lag = writer.audit.lag() if writer.audit is not None else None
        if lag is not None:
            self.entries_unsigned.set(lag[0])
            self.checkpoint_age.set(lag[1])
