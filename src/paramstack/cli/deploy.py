"""``paramstack deploy``: offline checks of the deployment artefacts, the dashboard generator,
the vLLM launch command and canary operations on a KServe InferenceService."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paramstack.cli.context import console, err_console

app = typer.Typer(help="Deployment artefacts and operations.", no_args_is_help=True)

ROOT = Annotated[Path, typer.Option(help="Repository root (holds deploy/ and .github/).")]


@app.command("check")
def check(root: ROOT = Path()) -> None:
    """Validate every deployment artefact offline (compose, Helm, Kubernetes and CRD schemas,
    promtool, dashboard, actionlint, hadolint, yamllint); exit 1 on any problem."""
    from paramstack.deploy.check import run_checks

    results = run_checks(root.resolve())
    for name, problems in results.items():
        mark = "[green]ok[/green]" if not problems else f"[red]{len(problems)} problem(s)[/red]"
        console.print(f"{mark}  {name}")
        for problem in problems:
            err_console.print(f"    {problem}", markup=False, highlight=False)
    if any(results.values()):
        raise typer.Exit(1)


@app.command("dashboard")
def write_dashboard(root: ROOT = Path()) -> None:
    """Regenerate deploy/helm/paramstack/files/dashboard.json from the Python definition."""
    from paramstack.deploy.check import Layout
    from paramstack.deploy.dashboard import render

    path = Layout(root.resolve()).dashboard
    path.write_text(render())
    console.print(f"wrote {path}")
