"""Predict tasks: what a model's inputs and outputs mean, looked up by the registry's task name.

A task parses the shared payload into its input (with the SHA-256 used for logs and the result
cache), and computes a result whose top level is always ``prediction``, ``confidence`` and
``probabilities`` (so logs, daily metrics and A/B reports work for every task) plus whatever
the task adds (an ECG strip adds ``beats`` and ``summary``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from paramstack.backends.onnx_sessions import LoadedModel
from paramstack.errors import InvalidInput
from paramstack.gateway.payload import Payload


@dataclass
class Timings:
    preprocessing_ms: float = 0.0
    inference_ms: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class TaskInput:
    sha256: str
    value: Any
    size_bytes: int  # big inputs are computed off the event loop
    options: Mapping[str, Any] = field(default_factory=dict)


class PredictTask(Protocol):
    def warm(self) -> None:
        """Import what the first request would otherwise pay for (called off the event loop)."""

    def parse(self, payload: Payload) -> TaskInput: ...

    def compute(
        self, loaded: LoadedModel, data: TaskInput, serving: Mapping[str, Any], timings: Timings
    ) -> dict[str, Any]: ...


TASKS: dict[str, PredictTask] = {}


def predict_task(name: str) -> Callable[[type[Any]], type[Any]]:
    def register(cls: type[Any]) -> type[Any]:
        TASKS[name] = cls()
        return cls

    return register


def get_task(name: str) -> PredictTask:
    if name not in TASKS:  # first use: the task modules fill TASKS (kept off the hot path)
        from paramstack.gateway.tasks import ecg, image  # noqa: F401

    try:
        return TASKS[name]
    except KeyError:
        valid = ", ".join(sorted(TASKS))
        raise InvalidInput(f"this gateway cannot serve task {name!r} (valid: {valid})") from None
