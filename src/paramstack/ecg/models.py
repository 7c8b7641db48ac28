"""Beat classifiers: ResNet-1D, CNN-LSTM, Transformer and an ensemble, looked up by name.

Every model takes ``(beats [B, channels, window], rr [B, >= n_rr])`` and returns logits
``[B, classes]``; a CNN reads the first ``n_rr`` columns (the RR features), an ensemble with
a feature model also the morphology features after them (``beats.BEAT_FEATURES``).
The RR features are standardised inside the model (buffers set from the training set), so
the exported ONNX graph takes raw RR values and a server needs no extra statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from paramstack.errors import InvalidInput

ModelFactory = Callable[..., "BeatClassifier"]
_ARCHS: dict[str, ModelFactory] = {}


def model_arch(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model class (or factory) under ``name`` for configs and the CLI."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        if name in _ARCHS:
            raise ValueError(f"model architecture {name!r} is registered twice")
        _ARCHS[name] = factory
        return factory

    return decorate


def available_archs() -> list[str]:
    return sorted(_ARCHS)


def build_model(name: str, **kwargs: Any) -> BeatClassifier:
    """The model registered as ``name``; unknown names list the valid ones."""
    try:
        factory = _ARCHS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown model architecture {name!r}; valid: {', '.join(available_archs())}",
            param="arch",
        ) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:  # a misspelt arch_kwargs key in a config
        raise InvalidInput(f"bad arguments for model {name!r}: {exc}", param="arch_kwargs") from exc


class BeatClassifier(nn.Module):
    """Shared shape: a morphology encoder, an RR-feature branch and a small joint head."""

    rr_mean: torch.Tensor
    rr_std: torch.Tensor
    logit_bias: torch.Tensor

    def __init__(
        self, window: int, n_rr: int, n_classes: int, embed_dim: int, channels: int = 2
    ) -> None:
        super().__init__()
        self.window, self.n_rr, self.n_classes = window, n_rr, n_classes
        self.channels = channels
        self.register_buffer("rr_mean", torch.zeros(n_rr))
        self.register_buffer("rr_std", torch.ones(n_rr))
        # Added to the logits: the decision thresholds chosen by cross-validation on the
        # training records (ecg.calibrate); inside the model, so ONNX serving applies it too.
        self.register_buffer("logit_bias", torch.zeros(n_classes))
        self.rr_branch = nn.Sequential(nn.Linear(n_rr, 32), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(embed_dim + 32, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, n_classes)
        )

    def set_rr_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """From the training set's feature columns (the first ``n_rr`` are this model's)."""
        self.rr_mean.copy_(mean[: self.n_rr])
        self.rr_std.copy_(torch.clamp(std[: self.n_rr], min=1e-6))

    def encode(self, beats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, beats: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        rr_z = (rr[:, : self.n_rr] - self.rr_mean) / self.rr_std
        joint = torch.cat([self.encode(beats), self.rr_branch(rr_z)], dim=1)
        return self.head(joint) + self.logit_bias  # type: ignore[no-any-return]


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, 7, stride=stride, padding=3, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Conv1d(c_out, c_out, 7, padding=3, bias=False),
            nn.BatchNorm1d(c_out),
        )
        self.skip: nn.Module = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))  # type: ignore[no-any-return]


@model_arch("resnet1d")
class ResNet1D(BeatClassifier):
    """Three residual stages (16-32-64 channels), global average pooling."""

    def __init__(
        self, window: int, n_rr: int, n_classes: int, width: int = 16, channels: int = 2
    ) -> None:
        super().__init__(window, n_rr, n_classes, embed_dim=4 * width, channels=channels)
        self.encoder = nn.Sequential(
            nn.Conv1d(channels, width, 7, padding=3, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            _ResidualBlock(width, width, 1),
            _ResidualBlock(width, 2 * width, 2),
            _ResidualBlock(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )

    def encode(self, beats: torch.Tensor) -> torch.Tensor:
        return self.encoder(beats)  # type: ignore[no-any-return]


@model_arch("cnn_lstm")
class CnnLstm(BeatClassifier):
    """Convolutions shorten the beat 4x, a bidirectional LSTM reads the wave sequence."""

    def __init__(
        self, window: int, n_rr: int, n_classes: int, hidden: int = 32, channels: int = 2
    ) -> None:
        super().__init__(window, n_rr, n_classes, embed_dim=2 * hidden, channels=channels)
        self.conv = nn.Sequential(
            nn.Conv1d(channels, 16, 7, padding=3),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.lstm = nn.LSTM(32, hidden, batch_first=True, bidirectional=True)

    def encode(self, beats: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.lstm(self.conv(beats).transpose(1, 2))
        return sequence.mean(dim=1)  # type: ignore[no-any-return]


class _EncoderLayer(nn.Module):
    """Pre-norm self-attention block written out, so every exporter maps it to plain ops."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))  # type: ignore[no-any-return]


@model_arch("transformer")
class BeatTransformer(BeatClassifier):
    """Patches of 8 samples become tokens; two attention layers; mean over tokens."""

    def __init__(
        self,
        window: int,
        n_rr: int,
        n_classes: int,
        dim: int = 32,
        layers: int = 2,
        channels: int = 2,
    ) -> None:
        super().__init__(window, n_rr, n_classes, embed_dim=dim, channels=channels)
        patch = 8
        self.embed = nn.Conv1d(channels, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, window // patch, dim))
        self.blocks = nn.Sequential(*[_EncoderLayer(dim, heads=4) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)

    def encode(self, beats: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(beats).transpose(1, 2) + self.position
        return self.norm(self.blocks(tokens)).mean(dim=1)  # type: ignore[no-any-return]


class FeatureLogistic(nn.Module):
    """A multinomial logistic regression on the standardised per-beat features, fitted by
    scikit-learn at training time (``ecg.feature_model``) and stored as plain tensors, so
    the ONNX graph and torch serve it alike. ``weight`` scales its log-odds when added to the
    CNN logits (0: no effect, as in models trained without it)."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("weight", torch.zeros(()))
        self.linear = nn.Linear(n_features, n_classes)
        for p in self.linear.parameters():
            p.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features[:, : self.n_features] - self.mean) / self.std
        return self.weight * self.linear(z)  # type: ignore[no-any-return]


class AfGate(nn.Module):
    """The AF detector of ``ecg.rhythm`` (a logistic regression on the AF features of a
    10-beat window) inside the graph: 1 for beats it calls AF, else 0. Inside AF the feature
    model is dropped (irregular RR intervals look premature to it; DS1 CV in docs/ecg.md), so
    ONNX and strips gate exactly as training did. Reads ``n_af`` columns from ``offset``."""

    mean: torch.Tensor
    std: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor

    def __init__(self, offset: int, n_af: int) -> None:
        super().__init__()
        self.offset, self.n_af = offset, n_af
        self.register_buffer("mean", torch.zeros(n_af))
        self.register_buffer("std", torch.ones(n_af))
        self.register_buffer("coef", torch.zeros(n_af))
        self.register_buffer("intercept", torch.full((), -1.0))  # untrained: never gates

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features[:, self.offset : self.offset + self.n_af] - self.mean) / self.std
        return ((z @ self.coef + self.intercept) >= 0).to(features.dtype)


@model_arch("ensemble")
class BeatEnsemble(BeatClassifier):
    """Average of the members' logits; members are built by name. With ``feature_model``
    the logistic regression on ``n_features`` hand features (``FeatureLogistic``) is added;
    with ``af_gate`` (offset, count of the AF columns) it is dropped for beats in AF.

    Training gives each member its own loss (``member_logits``), so the members stay
    independent models that differ by initialisation (and by architecture when mixed):
    averaging them cancels much of the run-to-run variance an inter-patient test shows.
    """

    def __init__(
        self,
        window: int,
        n_rr: int,
        n_classes: int,
        members: tuple[str, ...] = ("resnet1d", "cnn_lstm", "transformer"),
        feature_model: int = 0,
        af_gate: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(window, n_rr, n_classes, embed_dim=1)
        if not members or "ensemble" in members:
            raise InvalidInput("an ensemble needs member architectures other than 'ensemble'")
        if feature_model and feature_model < n_rr:
            raise InvalidInput(f"feature_model needs at least the {n_rr} RR features")
        self.members = nn.ModuleList(
            build_model(m, window=window, n_rr=n_rr, n_classes=n_classes) for m in members
        )
        self.features = FeatureLogistic(feature_model, n_classes) if feature_model else None
        if af_gate is not None and not feature_model:
            raise InvalidInput("af_gate gates the feature model: set feature_model too")
        self.af_gate = AfGate(*af_gate) if af_gate is not None else None

    def set_rr_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().set_rr_normalisation(mean, std)
        for member in self.members:
            if isinstance(member, BeatClassifier):
                member.set_rr_normalisation(mean, std)

    def member_logits(self, beats: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """``[members, B, classes]``."""
        return torch.stack([m(beats, rr) for m in self.members])

    def forward(self, beats: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        logits = self.member_logits(beats, rr).mean(dim=0) + self.logit_bias
        if self.features is None:
            return logits
        head = self.features(rr)
        if self.af_gate is not None:
            head = head * (1.0 - self.af_gate(rr)).unsqueeze(1)
        return logits + head  # type: ignore[no-any-return]


class PackedInput(nn.Module):
    """One-input wrapper for ONNX: ``[B, channels * window + n_rr]`` = the beat channels
    flattened channel by channel, then the raw RR features.

    The registry and the gateway serve single-input classifiers; ``strip.pack_inputs``
    builds this layout from the two arrays.
    """

    def __init__(self, model: BeatClassifier) -> None:
        super().__init__()
        self.model = model
        self.window, self.channels = model.window, model.channels

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        width = self.channels * self.window
        beats = packed[:, :width].reshape(-1, self.channels, self.window)
        return self.model(beats, packed[:, width:])  # type: ignore[no-any-return]
