"""Hand-made morphology features per beat, in the spirit of de Chazal et al. (2004).

Inter-patient studies get most of their supraventricular (S) sensitivity from simple models
on normalised RR intervals and P-wave / QRS descriptors, which generalise across patients
better than a CNN fitted to DS1's few S-rich records. Every feature compares the beat with
the patient's causal running template (``beats.running_template``), so it is dimensionless
and needs no labels: an S beat keeps the template's QRS but its P wave differs or is missing
(hidden in the previous T wave when premature); a V beat changes the QRS itself.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

MORPHOLOGY_FEATURES: tuple[str, ...] = (
    # P-wave descriptors first, so "RR + P wave" is a prefix of beats.BEAT_FEATURES
    "p_corr",
    "p_energy_over_template",
    "p_energy_over_qrs",
    "p_deviation",
    "qrs_width_s",
    "qrs_width_over_template",
    "qrs_corr",
    "t_corr",
    "qrs_amplitude_over_template",
    "qrs_area_over_template",
    "qrs_deviation",
    "t_deviation",
)
P_WAVE_FEATURES = 4  # the first four
# Regions relative to the R peak, seconds: the P wave sits 80-300 ms before R (a premature
# one earlier, inside the previous T wave), the QRS within about ±80 ms, ST-T after it.
P_REGION = (-0.30, -0.08)
QRS_REGION = (-0.08, 0.10)
T_REGION = (0.10, 0.44)
WIDTH_THRESHOLD = 0.25  # fraction of the steepest slope that counts as inside the QRS


def _slice(before: int, after: int, fs: float, region: tuple[float, float]) -> slice:
    lo = max(0, before + round(region[0] * fs))
    hi = min(before + after, before + round(region[1] * fs))
    return slice(lo, hi)


def _corr(a: Array, b: Array) -> Array:
    """Row-wise Pearson correlation (0 where either row is flat)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(denom > 1e-12, (a * b).sum(axis=1) / np.maximum(denom, 1e-12), 0.0)


def _qrs_width(x: Array, fs: float) -> Array:
    """Seconds between the first and last sample whose slope exceeds WIDTH_THRESHOLD of the
    region's steepest slope."""
    slope = np.abs(np.diff(x, axis=1))
    inside = slope >= WIDTH_THRESHOLD * slope.max(axis=1, keepdims=True)
    first = inside.argmax(axis=1)
    last = slope.shape[1] - 1 - inside[:, ::-1].argmax(axis=1)
    return np.asarray((last - first + 1) / fs, dtype=np.float64)


def _detrended_std(x: Array) -> Array:
    """Spread after removing the straight line between the segment's ends (baseline drift,
    the tail of the previous T wave)."""
    ramp = np.linspace(0.0, 1.0, x.shape[1])[None, :]
    line = x[:, :1] + (x[:, -1:] - x[:, :1]) * ramp
    return np.asarray((x - line).std(axis=1), dtype=np.float64)


def morphology_features(
    windows: Array, template: Array, before: int, fs: float
) -> npt.NDArray[np.float32]:
    """``[n, len(MORPHOLOGY_FEATURES)]`` from mean-removed beat windows and the running
    template at each beat (same shape), R peak at index ``before``."""
    after = windows.shape[1] - before
    p, qrs, t = (_slice(before, after, fs, r) for r in (P_REGION, QRS_REGION, T_REGION))
    w, tpl = np.asarray(windows, np.float64), np.asarray(template, np.float64)
    width, width_tpl = _qrs_width(w[:, qrs], fs), _qrs_width(tpl[:, qrs], fs)
    amp_tpl = np.ptp(tpl[:, qrs], axis=1) + 1e-6
    area = w[:, qrs].sum(axis=1)
    area_tpl = tpl[:, qrs].sum(axis=1)
    p_std, p_std_tpl = _detrended_std(w[:, p]), _detrended_std(tpl[:, p])
    diff = w - tpl

    def deviation(region: slice) -> Array:
        return np.asarray(np.sqrt((diff[:, region] ** 2).mean(axis=1)) / amp_tpl)

    columns = {
        "p_corr": _corr(w[:, p], tpl[:, p]),
        "p_energy_over_template": p_std / (p_std_tpl + 0.01 * amp_tpl),
        "p_energy_over_qrs": p_std / (np.ptp(w[:, qrs], axis=1) + 1e-6),
        "p_deviation": deviation(p),
        "qrs_width_s": width,
        "qrs_width_over_template": width / np.maximum(width_tpl, 1.0 / fs),
        "qrs_corr": _corr(w[:, qrs], tpl[:, qrs]),
        "t_corr": _corr(w[:, t], tpl[:, t]),
        "qrs_amplitude_over_template": np.ptp(w[:, qrs], axis=1) / amp_tpl,
        "qrs_area_over_template": np.clip(
            area / (np.abs(area_tpl) + 0.05 * amp_tpl * (qrs.stop - qrs.start)), -5, 5
        ),
        "qrs_deviation": deviation(qrs),
        "t_deviation": deviation(t),
    }
    features = np.stack([columns[name] for name in MORPHOLOGY_FEATURES], axis=1)
    return np.asarray(np.nan_to_num(features), dtype=np.float32)
