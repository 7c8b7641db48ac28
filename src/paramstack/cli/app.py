"""The root ``paramstack`` command: one sub-app per command group."""

from __future__ import annotations

import typer

from paramstack.cli import (
    abtest,
    attest,
    audit,
    data,
    db,
    deploy,
    ecg,
    evaluate,
    export,
    guard,
    keys,
    llm,
    metrics,
    models,
    rag,
    rlaif,
    tenants,
    tokenizer,
    traffic,
    train,
    usage,
)
from paramstack.cli.context import print_json, settings
from paramstack.cli.quickstart import quickstart
from paramstack.cli.serve import serve

app = typer.Typer(
    name="paramstack",
    help="Own your AI parameters: build, register and serve your own models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.add_typer(abtest.app, name="abtest")
app.add_typer(traffic.app, name="traffic")
app.add_typer(metrics.app, name="metrics")
app.add_typer(ecg.app, name="ecg")
app.add_typer(guard.app, name="guard")
app.add_typer(attest.app, name="attest")
app.add_typer(tenants.app, name="tenants")
keys.app.command("attest-rotate")(attest.attest_rotate)
keys.app.command("attest-jwks")(attest.jwks)
app.add_typer(keys.app, name="keys")
app.add_typer(usage.app, name="usage")
app.add_typer(audit.app, name="audit")
app.add_typer(llm.app, name="llm")
app.add_typer(data.app, name="data")
app.add_typer(tokenizer.app, name="tokenizer")
app.add_typer(deploy.app, name="deploy")
app.add_typer(rag.app, name="rag")
app.add_typer(train.app, name="train")
app.add_typer(rlaif.app, name="rlaif")
app.add_typer(evaluate.app, name="eval")
app.add_typer(export.app, name="export")
app.command()(serve)
app.command()(quickstart)


@app.command("config")
def show_config() -> None:
    """Print the resolved settings (environment PARAMSTACK_* over paramstack.toml)."""
    cfg = settings()
    data = cfg.model_dump(mode="json")
    data["resolved_database_url"] = str(cfg.resolved_database_url).split("@")[-1]
    data["resolved_artifacts_dir"] = str(cfg.resolved_artifacts_dir)
    print_json(data)
