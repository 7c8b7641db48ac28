"""The gateway's split table on its own: the sliding window, SLO judgement and snapshots."""

from __future__ import annotations

from dataclasses import replace

from paramstack.gateway.traffic import TrafficTable, Window, breach
from paramstack.registry.traffic import SplitView

CANARY = SplitView(id=1, name="chat", stable="v1", candidate="v2", kind="canary", percent=50.0,
                   status="running", revision=1, max_error_rate=0.1, max_p95_ms=100.0,
                   window_s=10.0, min_requests=4)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breach_waits_for_min_requests_and_names_the_cause() -> None:
    assert breach(CANARY, Window(3, 3, 500.0)) is None  # too few calls to judge
    assert breach(CANARY, Window(10, 1, 50.0)) is None  # 10 % is not over 10 %
    assert "error rate 0.200 > 0.1" in (breach(CANARY, Window(10, 2, 50.0)) or "")
    assert "p95 latency 150.0 ms > 100 ms" in (breach(CANARY, Window(10, 0, 150.0)) or "")
    assert breach(replace(CANARY, kind="ab"), Window(10, 10, 500.0)) is None
    assert breach(replace(CANARY, status="rolled_back"), Window(10, 10, 500.0)) is None


def test_window_slides_and_only_the_candidate_is_judged() -> None:
    clock = Clock()
    table = TrafficTable(clock=clock)
    table.replace({"chat": CANARY})
    picks = {table.pick("chat", f"user-{i}").arm for i in range(50)}  # type: ignore[union-attr]
    assert picks == {"stable", "candidate"}
    candidate = table.pick("chat", "x")
    assert candidate is not None
    candidate = type(candidate)(CANARY, "candidate", "v2")
    stable = type(candidate)(CANARY, "stable", "v1")
    for _ in range(5):
        table.observe(stable, 0.01, 502)  # stable failing is not the canary's fault
    assert table.breaches() == []
    for _ in range(4):
        table.observe(candidate, 0.01, 502)
    [(split, reason)] = table.breaches()
    assert split.name == "chat" and reason.startswith("error rate 1.000")
    clock.now += 11  # the failures leave the window
    assert table.window(CANARY, "candidate") == Window(0, 0, None)
    assert table.breaches() == []


def test_a_local_rollback_survives_an_older_snapshot_and_resets_the_window() -> None:
    table = TrafficTable()
    table.replace({"chat": CANARY})
    pick = table.pick("chat", "someone")
    assert pick is not None
    table.observe(pick, 0.5, 200)
    rolled = replace(CANARY, percent=0.0, status="rolled_back", revision=2)
    table.apply(rolled)
    table.replace({"chat": CANARY})  # a refresh that read the database before the commit
    assert table.get("chat") == rolled
    assert {table.pick("chat", f"u{i}").target for i in range(30)} == {"v1"}  # type: ignore[union-attr]
    assert table.window(rolled, pick.arm).requests == 0
    table.replace({})  # stopped elsewhere: the name is no split any more
    assert table.pick("chat", "someone") is None
