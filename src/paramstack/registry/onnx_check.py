"""Validate an ONNX file before it enters the registry: structure, opset, shapes, loadability."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

MIN_OPSET = 7


@dataclass(frozen=True)
class OnnxSignature:
    opset: int
    input_name: str
    input_shape: list[int]
    output_name: str
    output_shape: list[int]


def _dims(value_info: Any) -> list[int]:
    """Static dims as ints, symbolic or unknown dims as -1."""
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else -1 for d in dims]


def inspect_onnx(path: Path) -> OnnxSignature:
    """Read and check ``path``; raise InvalidInput with the reason when it cannot be served."""
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise InvalidInput(f"{path.name} is not a valid ONNX model: {exc}") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise InvalidInput(f"{path.name}: opset {opset} is older than the supported {MIN_OPSET}")
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(model.graph.output) < 1:
        raise InvalidInput(
            f"{path.name}: a classifier needs exactly one input and at least one output "
            f"(found {len(inputs)} inputs, {len(model.graph.output)} outputs)"
        )
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInput(f"{path.name}: onnxruntime cannot load it: {exc}") from exc
    output = model.graph.output[0]
    return OnnxSignature(
        opset=opset,
        input_name=inputs[0].name,
        input_shape=_dims(inputs[0]),
        output_name=output.name,
        output_shape=_dims(output),
    )


def shapes_match(declared: list[int], actual: list[int]) -> bool:
    """Equal rank and equal dims, where -1 on either side matches anything."""
    return len(declared) == len(actual) and all(
        d == a or d == -1 or a == -1 for d, a in zip(declared, actual, strict=True)
    )


def check_declared(
    sig: OnnxSignature,
    *,
    input_shape: list[int] | None,
    output_shape: list[int] | None,
    class_labels: list[str],
) -> None:
    """Refuse a file whose shapes disagree with what the caller declared."""
    if input_shape is not None and not shapes_match(input_shape, sig.input_shape):
        raise InvalidInput(
            f"declared input shape {input_shape} does not match the model's {sig.input_shape}",
            param="input_shape",
        )
    if output_shape is not None and not shapes_match(output_shape, sig.output_shape):
        raise InvalidInput(
            f"declared output shape {output_shape} does not match the model's {sig.output_shape}",
            param="output_shape",
        )
    n_out = sig.output_shape[-1] if sig.output_shape else -1
    if class_labels and n_out != -1 and len(class_labels) != n_out:
        raise InvalidInput(
            f"{len(class_labels)} class labels given but the model outputs {n_out} classes",
            param="class_labels",
        )
