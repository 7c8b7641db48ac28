"""``paramstack tokenizer``: train a SentencePiece tokenizer and measure its fertility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from paramstack.cli.context import console, settings

app = typer.Typer(help="Own tokenizer: training and fertility evaluation.", no_args_is_help=True)

# 32000 BPE pieces train fine on the bundled sample (1.9 M characters); a unigram model there
# supports at most ~23.6k pieces, and training says so and suggests the limit.
DEFAULT_VOCAB = 32000


@app.command("train")
def train(
    input: Annotated[list[Path], typer.Option(help="JSONL folder(s) or file(s).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size.")] = DEFAULT_VOCAB,
    model_type: Annotated[str, typer.Option(help="unigram or bpe.")] = "bpe",
    character_coverage: Annotated[float, typer.Option()] = 0.9995,
) -> None:
    """Train SentencePiece (byte fallback, split digits, Llama special tokens) and export the
    transformers files, checked to give SentencePiece's ids."""
    from paramstack.tokenizer.corpus import texts
    from paramstack.tokenizer.train import TrainConfig
    from paramstack.tokenizer.train import train as run_train

    cfg = TrainConfig(
        vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage
    )
    with console.status(f"training a {model_type} tokenizer, vocabulary {vocab_size}"):
        meta = run_train(texts(input), out, cfg)
    console.print(
        f"{out / 'tokenizer.model'}: {meta['corpus']['lines']:,} lines, "
        f"{meta['corpus']['characters']:,} characters, {meta['seconds']} s"
    )
    check = meta["transformers_ids_check"]
    if check["different"]:
        console.print(
            f"[yellow]warning:[/] transformers ids differ from SentencePiece on "
            f"{check['different']} of {check['checked']} sample lines (unigram ties)"
        )


@app.command("eval")
def evaluate(
    tokenizer: Annotated[Path, typer.Option(help="Folder holding tokenizer.model.")],
    heldout: Annotated[list[Path], typer.Option(help="Held-out JSONL folder(s).")],
    out: Annotated[Path, typer.Option(help="Report folder.")],
    reference: Annotated[
        list[str] | None,
        typer.Option(help="Reference tokenizers [mistral-v1 llama-2 llama-3 qwen2 gpt-2]."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Downloaded references [<home>/cache/tokenizers].")
    ] = None,
) -> None:
    """Tokens per word, characters per token and continued words on each held-out folder,
    side by side with reference tokenizers; writes report.json, report.md, fertility.png."""
    from paramstack.errors import InvalidInput
    from paramstack.tokenizer import evaluate as ev
    from paramstack.tokenizer.corpus import texts
    from paramstack.tokenizer.references import ALL, load_references, sentencepiece

    model = tokenizer / "tokenizer.model"
    if not model.is_file():
        raise InvalidInput(f"{model} does not exist", param="tokenizer")
    sets = {path.name: list(texts([path])) for path in heldout}
    if len(sets) != len(heldout):
        raise InvalidInput("held-out folders need distinct names", param="heldout")
    refs_dir = cache or settings().home / "cache" / "tokenizers"
    with console.status("loading reference tokenizers (the first run converts the GGUFs)"):
        refs = load_references(reference or list(ALL), refs_dir)
    with console.status("tokenizing held-out text"):
        report = ev.compare(sentencepiece("ours", model), refs, sets)
        ev.write(report, out)
    for s in report["heldout_sets"]:
        table = Table(s, "tokens/word", "chars/token", "continued")
        for row in report["tokenizers"]:
            m = row["sets"][s]
            table.add_row(
                row["name"],
                f"{m['fertility']:.3f}",
                f"{m['chars_per_token']:.2f}",
                f"{m['continued_words']:.1%}",
            )
        console.print(table)
    console.print(f"report: {out / 'report.md'}")
