"""``paramstack export``: causal LM (base + merged adapter) → ONNX with parity checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import console, print_json

app = typer.Typer(help="Export models to ONNX.", no_args_is_help=True)


@app.command()
def onnx(
    out: Annotated[Path, typer.Option(help="Output directory (model.onnx, tokenizer/).")],
    adapter: Annotated[
        Path | None, typer.Option(help="LoRA adapter directory to merge (default: base only).")
    ] = None,
    base: Annotated[str, typer.Option(help="Base model ('' = the adapter's own base).")] = "",
    atol: Annotated[float, typer.Option(help="Max |torch - onnxruntime| on logits.")] = 1e-4,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Merge the adapter, export with torch.onnx (dynamo), check logits, argmax and greedy
    generation against torch; nothing is left behind when a check fails."""
    from paramstack.export.causal_lm import export_adapter

    with console.status("exporting (torch.export tracing takes a few minutes on CPU)"):
        report = export_adapter(adapter, out, base=base, atol=atol)
    info = {
        "onnx": str(report.onnx_path),
        "max_abs_diff": report.max_abs_diff,
        "argmax_agreement": report.argmax_agreement,
        "greedy_equal": f"{report.greedy_equal}/{report.prompts}",
    }
    if as_json:
        print_json(info)
    else:
        console.print(
            f"{info['onnx']}: max |Δlogits| {report.max_abs_diff:.2e}, argmax agreement "
            f"{report.argmax_agreement:.4f}, greedy equal {info['greedy_equal']}"
        )
