"""``paramstack eval``: perplexity, judge win-rate, and the lm-evaluation-harness bridge."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from paramstack.cli.context import console, print_json

app = typer.Typer(help="Evaluate base models and adapters.", no_args_is_help=True)
ModelOption = Annotated[
    str | None, typer.Option(help="Adapter directory; default: the base model alone.")
]
BaseOption = Annotated[str, typer.Option(help="Base model path/hub id ('' = offline default).")]


def _model(adapter: str | None, base: str) -> tuple[Any, Any]:
    from paramstack.evaluate.report import _load

    return _load(adapter, base)


@app.command("perplexity")
def perplexity_(
    heldout: Annotated[Path, typer.Argument(help="JSONL file or directory of held-out text.")],
    adapter: ModelOption = None,
    base: BaseOption = "",
    max_texts: int = 100,
    max_length: int = 256,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Perplexity of the base (or base + adapter) on held-out text."""
    from paramstack.evaluate.perplexity import heldout_texts, perplexity

    texts = heldout_texts(heldout, max_texts)
    with console.status(f"scoring {len(texts)} texts"):
        result = perplexity(*_model(adapter, base), texts, max_length=max_length)
    if as_json:
        print_json(result)
    else:
        console.print(f"perplexity {result['perplexity']:.3f} over {result['tokens']:.0f} tokens")


@app.command("winrate")
def winrate(
    prompts: Annotated[Path, typer.Argument(help="Chat JSONL; the answers are references.")],
    a: Annotated[str, typer.Option(help="Adapter directory for model A.")],
    b: Annotated[str | None, typer.Option(help="Adapter for model B (default: base).")] = None,
    base: BaseOption = "",
    max_prompts: int = 20,
    judge: Annotated[str, typer.Option(help="'rubric' (offline) or a judge URL.")] = "rubric",
    judge_model: str = "gpt-4o-mini",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How often A's answer beats B's by the judge's mean score (ties count half)."""
    from paramstack.evaluate.winrate import win_rate
    from paramstack.train.rlaif import RlaifConfig, load_prompts, make_judge

    items = load_prompts(prompts, max_prompts)
    the_judge = make_judge(RlaifConfig(judge=judge, judge_model=judge_model))
    with console.status(f"judging {len(items)} prompts with {the_judge.name}"):
        result = win_rate(_model(a, base), _model(b, base), items, the_judge)
    if as_json:
        print_json(result)
    else:
        console.print(
            f"win-rate A vs B {result['win_rate']:.3f} ({result['wins']} wins, "
            f"{result['losses']} losses, {result['ties']} ties; judge {result['judge']})"
        )


@app.command()
def harness(
    tasks: Annotated[str, typer.Argument(help="Comma-separated lm-eval task names.")],
    adapter: ModelOption = None,
    base: BaseOption = "",
    limit: Annotated[int | None, typer.Option(help="Examples per task.")] = None,
) -> None:
    """Run lm-evaluation-harness tasks (optional: needs `pip install lm-eval` and task data)."""
    from paramstack.evaluate.harness import harness_available, run_harness

    if not harness_available():
        console.print("lm-evaluation-harness is not installed: `pip install lm-eval`")
        raise typer.Exit(2)
    print_json(run_harness(*_model(adapter, base), tasks.split(","), limit=limit))


@app.command()
def report(
    config: Annotated[Path | None, typer.Option("--config", help="YAML (params.yaml).")] = None,
    section: Annotated[str | None, typer.Option(help="Section of the YAML (eval).")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides.")] = None,
) -> None:
    """The pipeline's eval stage: perplexities, win-rates and DPO reward figures → metrics JSON."""
    from paramstack.evaluate.report import EvalConfig, evaluate_all
    from paramstack.train.config import load_config
    from paramstack.train.rlaif import RlaifConfig, make_judge

    cfg = load_config(EvalConfig, config, overrides, section=section)
    print_json(dataclasses.asdict(cfg))
    judge = make_judge(RlaifConfig(judge=cfg.judge))
    metrics = evaluate_all(cfg, judge, log=console.print)
    print_json(metrics)
