"""NEWS2 and MEWS at every published band edge, impossible values refused, trends."""

from __future__ import annotations

from typing import Any

import pytest

from paramstack.ecg.scores import mews, news2, score_trend
from paramstack.errors import InvalidInput

NORMAL = {
    "respiration_rate": 16,
    "spo2": 98,
    "on_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "alert",
    "temperature": 37.0,
}
MEWS_NORMAL = {
    "systolic_bp": 120,
    "pulse": 70,
    "respiration_rate": 12,
    "temperature": 37.0,
    "consciousness": "alert",
}


def n2(**changes: Any) -> dict[str, int]:
    return news2({**NORMAL, **changes}).parameters


def mw(**changes: Any) -> dict[str, int]:
    return mews({**MEWS_NORMAL, **changes}).parameters


@pytest.mark.parametrize(
    ("value", "points"),
    [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_news2_respiration_edges(value: int, points: int) -> None:
    assert n2(respiration_rate=value)["respiration_rate"] == points


@pytest.mark.parametrize(
    ("value", "points"), [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
)
def test_news2_spo2_scale1_edges(value: int, points: int) -> None:
    assert n2(spo2=value)["spo2"] == points
    assert n2(spo2=value, on_oxygen=True)["spo2"] == points  # scale 1 ignores oxygen


@pytest.mark.parametrize(
    ("value", "oxygen", "points"),
    [
        (83, False, 3),
        (84, False, 2),
        (85, False, 2),
        (86, False, 1),
        (87, False, 1),
        (88, False, 0),
        (92, False, 0),
        (93, False, 0),
        (99, False, 0),
        (83, True, 3),
        (85, True, 2),
        (87, True, 1),
        (88, True, 0),
        (92, True, 0),
        (93, True, 1),
        (94, True, 1),
        (95, True, 2),
        (96, True, 2),
        (97, True, 3),
        (100, True, 3),
    ],
)
def test_news2_spo2_scale2_edges(value: int, oxygen: bool, points: int) -> None:
    assert n2(spo2=value, spo2_scale=2, on_oxygen=oxygen)["spo2"] == points


def test_news2_oxygen_adds_two() -> None:
    assert n2(on_oxygen=True)["air_or_oxygen"] == 2
    assert n2()["air_or_oxygen"] == 0


@pytest.mark.parametrize(
    ("value", "points"),
    [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_news2_systolic_edges(value: int, points: int) -> None:
    assert n2(systolic_bp=value)["systolic_bp"] == points


@pytest.mark.parametrize(
    ("value", "points"),
    [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
)
def test_news2_pulse_edges(value: int, points: int) -> None:
    assert n2(pulse=value)["pulse"] == points


@pytest.mark.parametrize(
    ("value", "points"),
    [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)],
)
def test_news2_temperature_edges(value: float, points: int) -> None:
    assert n2(temperature=value)["temperature"] == points


@pytest.mark.parametrize(
    ("level", "points"),
    [("alert", 0), ("A", 0), ("confusion", 3), ("voice", 3), ("pain", 3), ("unresponsive", 3)],
)
def test_news2_consciousness(level: str, points: int) -> None:
    assert n2(consciousness=level)["consciousness"] == points


def test_news2_risk_bands() -> None:
    assert news2(NORMAL).risk == "low" and news2(NORMAL).total == 0
    assert news2({**NORMAL, "respiration_rate": 22, "pulse": 95}).risk == "low"  # 3, no single 3
    single_three = news2({**NORMAL, "consciousness": "voice"})
    assert single_three.total == 3 and single_three.risk == "low-medium"
    medium = news2({**NORMAL, "respiration_rate": 22, "pulse": 115, "temperature": 38.5})
    assert medium.total == 5 and medium.risk == "medium"
    high = news2({**NORMAL, "respiration_rate": 26, "systolic_bp": 95, "pulse": 115})
    assert high.total == 7 and high.risk == "high" and "emergency" in high.response.lower()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spo2", 101),
        ("respiration_rate", -1),
        ("pulse", -5),
        ("systolic_bp", 0),
        ("temperature", 50.0),
        ("spo2", float("nan")),
        ("pulse", "fast"),
        ("pulse", True),
    ],
)
def test_impossible_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        news2({**NORMAL, field: value})
    assert err.value.param == field
    if field in MEWS_NORMAL:
        with pytest.raises(InvalidInput):
            mews({**MEWS_NORMAL, field: value})


@pytest.mark.parametrize("field", sorted(NORMAL))
def test_missing_fields_are_refused(field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        news2({k: v for k, v in NORMAL.items() if k != field})


def test_bad_consciousness_and_scale() -> None:
    with pytest.raises(InvalidInput, match="consciousness"):
        news2({**NORMAL, "consciousness": "sleepy"})
    with pytest.raises(InvalidInput, match="AVPU"):
        mews({**MEWS_NORMAL, "consciousness": "confusion"})
    with pytest.raises(InvalidInput, match="spo2_scale"):
        news2({**NORMAL, "spo2_scale": 3})


@pytest.mark.parametrize(
    ("value", "points"),
    [(70, 3), (71, 2), (80, 2), (81, 1), (100, 1), (101, 0), (199, 0), (200, 2)],
)
def test_mews_systolic_edges(value: int, points: int) -> None:
    assert mw(systolic_bp=value)["systolic_bp"] == points


@pytest.mark.parametrize(
    ("value", "points"),
    [
        (40, 2),
        (41, 1),
        (50, 1),
        (51, 0),
        (100, 0),
        (101, 1),
        (110, 1),
        (111, 2),
        (129, 2),
        (130, 3),
    ],
)
def test_mews_heart_rate_edges(value: int, points: int) -> None:
    assert mw(pulse=value)["pulse"] == points


@pytest.mark.parametrize(
    ("value", "points"), [(8, 2), (9, 0), (14, 0), (15, 1), (20, 1), (21, 2), (29, 2), (30, 3)]
)
def test_mews_respiration_edges(value: int, points: int) -> None:
    assert mw(respiration_rate=value)["respiration_rate"] == points


@pytest.mark.parametrize(("value", "points"), [(34.9, 2), (35.0, 0), (38.4, 0), (38.5, 2)])
def test_mews_temperature_edges(value: float, points: int) -> None:
    assert mw(temperature=value)["temperature"] == points


@pytest.mark.parametrize(
    ("level", "points"), [("alert", 0), ("voice", 1), ("pain", 2), ("unresponsive", 3)]
)
def test_mews_avpu(level: str, points: int) -> None:
    assert mw(consciousness=level)["consciousness"] == points


def test_mews_total_and_risk() -> None:
    result = mews({**MEWS_NORMAL, "pulse": 115, "respiration_rate": 22, "temperature": 38.6})
    assert result.total == 6 and result.risk == "high"
    assert mews(MEWS_NORMAL).risk == "low"


def test_trend_flags_a_rising_patient_and_not_a_stable_one() -> None:
    rising = [
        {**NORMAL, "time": 0},
        {**NORMAL, "time": 4, "pulse": 95},
        {**NORMAL, "time": 8, "pulse": 115, "respiration_rate": 22},
    ]
    trend = score_trend(rising, "news2")
    assert [p["total"] for p in trend["points"]] == [0, 1, 4]
    assert trend["rising_alert"] and trend["slope_per_hour"] == pytest.approx(0.5)
    stable = score_trend([{**NORMAL, "time": t} for t in (0, 1, 2)], "news2")
    assert not stable["rising_alert"] and stable["slope_per_hour"] == 0.0
    with pytest.raises(InvalidInput, match="time"):
        score_trend([dict(NORMAL)], "news2")
    with pytest.raises(InvalidInput, match="unknown score"):
        score_trend([{**NORMAL, "time": 0}], "qsofa")
