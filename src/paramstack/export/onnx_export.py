"""Torch -> single-file ONNX export, plus a parity check against onnxruntime.

Two exporters live in torch 2.13: the torch.export-based one ("dynamo", the default) only
implements opset >= 18 and silently keeps 18 when a lower opset cannot be converted; the
legacy TorchScript one still emits opset 17 exactly. `export_onnx` picks by the requested
opset and then verifies the saved file, so callers get what they asked for or an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch

DYNAMO_MIN_OPSET = 18


class ParityError(ValueError):
    """The exported graph's outputs differ from the torch model's beyond tolerance."""


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Export and compare in eval mode without leaving the caller's model changed."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Mute deprecation chatter and 'torchvision is not installed' log lines; errors still raise."""
    logger = logging.getLogger("torch.onnx")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(previous)


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("exported model declares no default-domain opset")


def export_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    input_name: str = "input",
    output_name: str = "logits",
    dynamic_batch: bool = True,
    opset: int = 17,
) -> None:
    """Write a self-contained, checker-valid ONNX file at `path`, or raise and write nothing.

    The file appears only after it has been verified (temp file + rename), so a registry
    never picks up a half-written or wrong-opset model.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _eval_mode(model), torch.no_grad(), _quiet_exporter():
            if opset >= DYNAMO_MIN_OPSET:
                dynamic_shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
                program = torch.onnx.export(
                    model,
                    (example,),
                    input_names=[input_name],
                    output_names=[output_name],
                    opset_version=opset,
                    dynamo=True,
                    dynamic_shapes=dynamic_shapes,
                    verbose=False,
                )
                if program is None:
                    raise RuntimeError("torch.onnx.export returned no program")
                program.save(tmp, external_data=False)
            else:
                axes = {input_name: {0: "batch"}, output_name: {0: "batch"}}
                torch.onnx.export(
                    model,
                    (example,),
                    tmp,
                    input_names=[input_name],
                    output_names=[output_name],
                    opset_version=opset,
                    dynamo=False,
                    dynamic_axes=axes if dynamic_batch else None,
                )
        proto = onnx.load(str(tmp), load_external_data=False)
        onnx.checker.check_model(proto, full_check=True)
        actual = _default_opset(proto)
        if actual != opset:
            raise ValueError(f"exporter produced opset {actual}, requested {opset}")
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
            raise ValueError("exported model references external tensor data")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_parity(
    model: torch.nn.Module,
    onnx_path: Path,
    inputs: npt.NDArray[np.float32],
    atol: float = 1e-4,
    *,
    batch_size: int = 64,
) -> float:
    """Return the max |torch - onnxruntime| over `inputs`; raise ParityError above `atol`.

    Runs batch-wise so the dynamic batch axis is exercised, not just the export example.
    """
    if inputs.ndim < 1 or len(inputs) == 0:
        raise ValueError("check_parity needs at least one input sample")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_meta = session.get_inputs()[0]
    fixed_batch = input_meta.shape[0]
    step = fixed_batch if isinstance(fixed_batch, int) else batch_size
    if len(inputs) % step and isinstance(fixed_batch, int):
        raise ValueError(f"model has fixed batch {fixed_batch}; got {len(inputs)} samples")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    worst = 0.0
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, len(inputs), step):
            batch = np.ascontiguousarray(inputs[start : start + step])
            expected = model(torch.from_numpy(batch).to(device))
            if not isinstance(expected, torch.Tensor):
                raise TypeError(f"parity needs a single tensor output, got {type(expected)}")
            actual = session.run(None, {input_meta.name: batch})[0]
            reference = expected.detach().cpu().numpy()
            if actual.shape != reference.shape:
                raise ParityError(f"output shape {actual.shape} != torch {reference.shape}")
            diff = float(np.max(np.abs(actual.astype(np.float64) - reference)))
            if not np.isfinite(diff):
                raise ParityError(f"non-finite outputs in batch starting at sample {start}")
            worst = max(worst, diff)
    if worst > atol:
        raise ParityError(f"ONNX output differs from torch by {worst:.3g} (tolerance {atol:g})")
    return worst
