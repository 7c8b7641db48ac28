"""A/B traffic split through the gateway: share within ±3 % over 2,000 requests, sticky users."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import select

from paramstack.config import Settings
from paramstack.registry import abtests
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import InferenceLog, Stage
from paramstack.vision.digits import digit_images, digit_png_bytes
from tests.conftest import DigitsModel, LiveServer, register_digits

Server = Callable[[Settings], AbstractContextManager[LiveServer]]
PREDICT = "/v1/models/digits/predict"
REQUESTS = 2000
SPLIT_B = 30.0


def test_split_share_stickiness_and_arm_stats(
    settings: Settings, digits_model: DigitsModel, live_server: Server
) -> None:
    register_digits(settings, digits_model)
    register_digits(settings, digits_model, stage=Stage.STAGING)
    engine = make_engine(settings.resolved_database_url)
    factory = session_factory(engine)
    with transaction(factory) as s:
        abtests.create(s, "canary", "digits", 1, 2, SPLIT_B)
    images, _ = digit_images()
    bodies = [base64.b64encode(digit_png_bytes(img)).decode() for img in images[:200]]
    anonymous: Counter[str] = Counter()
    by_user: dict[str, set[str]] = {}
    with live_server(settings) as server, server.client() as client:
        for i in range(REQUESTS):
            r = client.post(PREDICT, json={"image": bodies[i % len(bodies)]})
            assert r.status_code == 200
            meta = r.json()
            arm = meta["metadata"]["ab_test"]["arm"]
            assert meta["model"]["version"] == (2 if arm == "B" else 1)
            anonymous[arm] += 1
        for i in range(REQUESTS):
            user = f"user-{i % 500}"
            r = client.post(PREDICT, json={"image": bodies[i % len(bodies)], "user": user})
            by_user.setdefault(user, set()).add(r.json()["metadata"]["ab_test"]["arm"])
    share_b = anonymous["B"] / REQUESTS * 100
    assert abs(share_b - SPLIT_B) <= 3.0, share_b
    assert all(len(arms) == 1 for arms in by_user.values()), "a user switched arms"
    sticky_b = sum(1 for arms in by_user.values() if arms == {"B"}) / len(by_user) * 100
    assert abs(sticky_b - SPLIT_B) <= 6.0, sticky_b  # 500 users: ±6 % is about 3 sigma
    with transaction(factory) as s:
        test = abtests.get(s, "canary")
        stats = abtests.arm_stats(s, test)
        assert stats["A"].requests + stats["B"].requests == 2 * REQUESTS
        assert stats["B"].requests >= anonymous["B"]
        assert stats["A"].p95_latency_ms is not None and stats["A"].errors == 0
        users = set(
            s.scalars(select(InferenceLog.user_id).where(InferenceLog.user_id.is_not(None)))
        )
        stopped = abtests.stop(s, "canary")
        assert stopped.winner in {"A", "B"}
        assert stopped.requests_a == stats["A"].requests
    engine.dispose()
    # the logs keep a keyed pseudonym per user, never the id the caller sent
    assert len(users) == len(by_user)
    assert not users & set(by_user)
    assert all(u.startswith("u_") and len(u) == 34 for u in users)
