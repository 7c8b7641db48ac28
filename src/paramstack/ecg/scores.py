"""Early-warning scores: NEWS2 (Royal College of Physicians 2017) and MEWS (Subbe et al. 2001),
with trend analysis over a series of observations.

Bands are applied as upper limits (``value <= limit``), which reproduces every published
edge (e.g. NEWS2 temperature 35.0 → 3, 35.1 → 1) and puts a value between two printed bands
(respiration 8.5) in the upper one. Physiologically impossible or missing values raise
``InvalidInput``: a wrong score is worse than none. Pure Python, no heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paramstack.errors import InvalidInput

# (upper limit inclusive, points); the last entry's limit is +inf.
_INF = math.inf
NEWS2_RESP = ((8, 3), (11, 1), (20, 0), (24, 2), (_INF, 3))
NEWS2_SPO2_SCALE1 = ((91, 3), (93, 2), (95, 1), (_INF, 0))
NEWS2_SPO2_SCALE2_AIR = ((83, 3), (85, 2), (87, 1), (_INF, 0))
NEWS2_SPO2_SCALE2_OXYGEN = ((83, 3), (85, 2), (87, 1), (92, 0), (94, 1), (96, 2), (_INF, 3))
NEWS2_SBP = ((90, 3), (100, 2), (110, 1), (219, 0), (_INF, 3))
NEWS2_PULSE = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (_INF, 3))
NEWS2_TEMP = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (_INF, 2))
MEWS_SBP = ((70, 3), (80, 2), (100, 1), (199, 0), (_INF, 2))
MEWS_HR = ((40, 2), (50, 1), (100, 0), (110, 1), (129, 2), (_INF, 3))
MEWS_RESP_LT = ((9, 2), (15, 0), (21, 1), (30, 2), (_INF, 3))  # strict: value < limit
MEWS_TEMP_LT = ((35.0, 2), (38.5, 0), (_INF, 2))  # strict: value < limit
ACVPU = {
    "alert": "A",
    "a": "A",
    "confusion": "C",
    "new confusion": "C",
    "c": "C",
    "voice": "V",
    "v": "V",
    "pain": "P",
    "p": "P",
    "unresponsive": "U",
    "u": "U",
}
MEWS_AVPU_POINTS = {"A": 0, "V": 1, "P": 2, "U": 3}
# Plausible ranges (inclusive); outside them the value is a typo or a sensor fault.
PLAUSIBLE = {
    "respiration_rate": (0, 90),
    "spo2": (40, 100),
    "systolic_bp": (30, 300),
    "pulse": (15, 300),
    "temperature": (25.0, 45.0),
}
NEWS2_RESPONSE = {
    "low": "Minimum 4 to 12-hourly observations; registered nurse assessment (score 1 to 4).",
    "low-medium": "Minimum hourly observations; urgent ward-based clinician review.",
    "medium": "Minimum hourly observations; urgent review by a clinician competent in acute "
    "illness; consider critical care outreach.",
    "high": "Continuous monitoring; emergency assessment by a critical care team; "
    "consider transfer to a higher level of care.",
}
MEWS_RESPONSE = {
    "low": "Routine observations.",
    "medium": "Increase observation frequency; inform the nurse in charge.",
    "high": "Urgent medical review (MEWS ≥ 5: higher risk of ICU admission and death, Subbe 2001).",
}


def _band(value: float, table: Sequence[tuple[float, int]], strict: bool = False) -> int:
    for limit, points in table:
        if (value < limit) if strict else (value <= limit):
            return points
    raise AssertionError("tables end with +inf")  # pragma: no cover


def _number(obs: Mapping[str, Any], key: str) -> float:
    if key not in obs or obs[key] is None:
        raise InvalidInput(f"missing observation: {key}", code="missing_observation", param=key)
    value = obs[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{key} must be a finite number", code="invalid_observation", param=key)
    lo, hi = PLAUSIBLE[key]
    if not lo <= value <= hi:
        raise InvalidInput(
            f"{key}={value} is physiologically impossible (accepted {lo} to {hi})",
            code="implausible_observation",
            param=key,
        )
    return float(value)


def _consciousness(obs: Mapping[str, Any]) -> str:
    raw = obs.get("consciousness")
    if raw is None:
        raise InvalidInput(
            "missing observation: consciousness", code="missing_observation", param="consciousness"
        )
    level = ACVPU.get(str(raw).strip().lower())
    if level is None:
        raise InvalidInput(
            f"consciousness {raw!r}: use alert, confusion, voice, pain or unresponsive",
            code="invalid_observation",
            param="consciousness",
        )
    return level


def _flag(obs: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    value = obs.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false", code="invalid_observation", param=key)
    return value


@dataclass(frozen=True)
class ScoreResult:
    total: int
    parameters: dict[str, int]
    risk: str
    response: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "parameters": self.parameters,
            "risk": self.risk,
            "response": self.response,
        }


def news2(obs: Mapping[str, Any]) -> ScoreResult:
    """NEWS2 from respiration_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness,
    temperature (°C) and optional spo2_scale (1, or 2 for hypercapnic respiratory failure)."""
    on_oxygen = _flag(obs, "on_oxygen")
    scale = obs.get("spo2_scale", 1)
    if scale not in (1, 2) or isinstance(scale, bool):
        raise InvalidInput(
            "spo2_scale must be 1 or 2", code="invalid_observation", param="spo2_scale"
        )
    spo2 = _number(obs, "spo2")
    spo2_table: Sequence[tuple[float, int]]
    if scale == 1:
        spo2_table = NEWS2_SPO2_SCALE1
    else:
        spo2_table = NEWS2_SPO2_SCALE2_OXYGEN if on_oxygen else NEWS2_SPO2_SCALE2_AIR
    parts = {
        "respiration_rate": _band(_number(obs, "respiration_rate"), NEWS2_RESP),
        "spo2": _band(spo2, spo2_table),
        "air_or_oxygen": 2 if on_oxygen else 0,
        "systolic_bp": _band(_number(obs, "systolic_bp"), NEWS2_SBP),
        "pulse": _band(_number(obs, "pulse"), NEWS2_PULSE),
        "consciousness": 0 if _consciousness(obs) == "A" else 3,
        "temperature": _band(_number(obs, "temperature"), NEWS2_TEMP),
    }
    total = sum(parts.values())
    if total >= 7:
        risk = "high"
    elif total >= 5:
        risk = "medium"
    elif any(p == 3 for p in parts.values()):
        risk = "low-medium"
    else:
        risk = "low"
    return ScoreResult(total, parts, risk, NEWS2_RESPONSE[risk])


def mews(obs: Mapping[str, Any]) -> ScoreResult:
    """MEWS from systolic_bp, pulse (heart rate), respiration_rate, temperature, consciousness
    (AVPU; 'confusion' is not an AVPU level and is refused)."""
    level = _consciousness(obs)
    if level not in MEWS_AVPU_POINTS:
        raise InvalidInput(
            "MEWS uses AVPU: alert, voice, pain or unresponsive",
            code="invalid_observation",
            param="consciousness",
        )
    parts = {
        "systolic_bp": _band(_number(obs, "systolic_bp"), MEWS_SBP),
        "pulse": _band(_number(obs, "pulse"), MEWS_HR),
        "respiration_rate": _band(_number(obs, "respiration_rate"), MEWS_RESP_LT, strict=True),
        "temperature": _band(_number(obs, "temperature"), MEWS_TEMP_LT, strict=True),
        "consciousness": MEWS_AVPU_POINTS[level],
    }
    total = sum(parts.values())
    risk = "high" if total >= 5 else "medium" if total >= 3 else "low"
    return ScoreResult(total, parts, risk, MEWS_RESPONSE[risk])


_RISK_ORDER = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}


def score_trend(
    series: Sequence[Mapping[str, Any]], score: str = "news2", rise_points: int = 2
) -> dict[str, Any]:
    """Score each observation (each needs a numeric ``time`` in hours) and flag a rising trend.

    Alert when the latest score is at least ``rise_points`` above the lowest earlier score,
    or the risk band has escalated since the first observation: a patient drifting from 2 to
    4 stays "low" at every point, yet is the one to review.
    """
    scorer = {"news2": news2, "mews": mews}.get(score)
    if scorer is None:
        raise InvalidInput(f"unknown score {score!r}; valid: news2, mews", param="score")
    if not series:
        raise InvalidInput("a trend needs at least one observation", param="series")
    points = []
    for i, obs in enumerate(series):
        when = obs.get("time")
        if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
            raise InvalidInput(f"observation {i}: time (hours) must be a number", param="time")
        points.append({"time": float(when), **scorer(obs).as_dict()})
    points.sort(key=lambda p: p["time"])
    totals = [p["total"] for p in points]
    times = [p["time"] for p in points]
    slope = 0.0
    if len(points) > 1 and max(times) > min(times):
        mean_t, mean_s = sum(times) / len(times), sum(totals) / len(totals)
        num = sum((t - mean_t) * (s - mean_s) for t, s in zip(times, totals, strict=True))
        slope = num / sum((t - mean_t) ** 2 for t in times)
    rise = totals[-1] - min(totals[:-1]) if len(totals) > 1 else 0
    escalated = _RISK_ORDER[points[-1]["risk"]] > _RISK_ORDER[points[0]["risk"]]
    return {
        "score": score,
        "points": points,
        "latest": points[-1],
        "slope_per_hour": slope,
        "rise_from_min": rise,
        "rising_alert": rise >= rise_points or escalated,
    }
