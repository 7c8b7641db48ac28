"""The lever-3 measurement parts of the ECG benchmarks: S oversampling repeats exactly the S
beats of the capped epoch, and a CNN mixture averages log-probabilities of the same beats."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ecg_gate_cv import mixed_logits
from ecg_inputs_cv import _s_oversampled
from paramstack.ecg.train import epoch_indices


def test_s_oversampling_repeats_only_s_beats() -> None:
    labels = np.array([0] * 50 + [1] * 5 + [2] * 10 + [3] * 2)
    plain = epoch_indices(labels, 20, 3)
    order = _s_oversampled(4)(labels, 20, 3)
    counts, base = np.bincount(labels[order]), np.bincount(labels[plain])
    assert counts.tolist() == [20, 20, 10, 2]  # N capped, S 5 x 4, V and F as before
    assert counts[0] == base[0] and counts[1] == 4 * base[1]
    assert sorted(set(order[labels[order] == 1].tolist())) == list(range(50, 55))
    assert np.array_equal(order, _s_oversampled(4)(labels, 20, 3))  # deterministic per seed


def test_mixture_averages_log_probabilities(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2])
    a = np.log(np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], np.float32))
    b = np.log(np.array([[0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]], np.float32))
    np.savez(tmp_path / "a.npz", logits=a, labels=labels)
    np.savez(tmp_path / "b.npz", logits=b, labels=labels)
    mixed = mixed_logits([tmp_path / "a.npz", tmp_path / "b.npz"], labels)
    assert np.allclose(mixed, (a + b) / 2)
    assert mixed.argmax(1).tolist() == [0, 1, 2]  # beat 1: 0.6/0.3 and 0.2/0.7 -> S wins
    np.savez(tmp_path / "c.npz", logits=b, labels=np.array([0, 0, 2]))
    with pytest.raises(SystemExit, match="other beats"):
        mixed_logits([tmp_path / "a.npz", tmp_path / "c.npz"], labels)
