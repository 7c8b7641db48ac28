"""``paramstack deploy``: offline checks of the deployment artefacts, the dashboard generator,
the vLLM launch command and canary operations on a KServe InferenceService."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


@app.command("vllm")
def vllm(
    base: Annotated[
        str, typer.Option(help="Registered transformers model (production) or a hub id.")
    ] = "HuggingFaceTB/SmolLM2-135M-Instruct",
    fmt: Annotated[
        str, typer.Option("--format", help="command | args | values (Helm llm block, YAML).")
    ] = "command",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    artifact_uri_prefix: Annotated[
        str | None,
        typer.Option(help="Where the cluster reads <artifacts_dir> (e.g. s3://bucket/artifacts)."),
    ] = None,
    storage_uri: Annotated[
        str | None, typer.Option(help="KServe storageUri of the base [hf://<base>].")
    ] = None,
    served_model_name: str = "base",
    kv_cache_dtype: Annotated[str, typer.Option(help="auto, fp8, ... (vLLM's choices).")] = "fp8",
    tensor_parallel_size: Annotated[int, typer.Option(min=1)] = 1,
    max_model_len: Annotated[int, typer.Option(min=1)] = 4096,
    max_loras: Annotated[int, typer.Option(min=1)] = 4,
    draft_model: Annotated[
        str | None, typer.Option(help="Speculative decoding draft model.")
    ] = None,
    num_speculative_tokens: Annotated[int, typer.Option(min=1, max=16)] = 4,
    canary: Annotated[int, typer.Option(min=0, max=100, help="canaryTrafficPercent.")] = 100,
) -> None:
    """Print or write the `vllm serve` command (or the chart's llm values) from the registry:
    base model, tenants' LoRA adapters, FP8 KV cache, draft model, tensor parallelism."""
    import shlex

    import yaml

    from paramstack.cli.context import registry_session, settings
    from paramstack.deploy import vllm as launch
    from paramstack.errors import ParamstackError

    if fmt not in ("command", "args", "values"):
        err_console.print("error: --format is one of command, args, values")
        raise typer.Exit(2)
    cfg = settings()
    try:
        with registry_session(cfg) as session:
            artifacts = cfg.resolved_artifacts_dir
            plan = launch.VllmPlan(
                model=launch.base_model(session, base, artifacts, artifact_uri_prefix),
                served_model_name=served_model_name,
                max_model_len=max_model_len,
                tensor_parallel_size=tensor_parallel_size,
                kv_cache_dtype=kv_cache_dtype,
                adapters=launch.tenant_adapters(session, artifacts, artifact_uri_prefix),
                max_loras=max_loras,
                draft_model=draft_model,
                num_speculative_tokens=num_speculative_tokens,
            )
            argv = launch.serve_argv(plan)
    except ParamstackError as exc:
        err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    problems = launch.check_flags(argv)
    if problems:
        for problem in problems:
            err_console.print(f"error: {problem}")
        raise typer.Exit(2)
    if fmt == "values":
        uri = storage_uri or (plan.model if "://" in plan.model else f"hf://{plan.model}")
        text = yaml.safe_dump(
            launch.helm_values(plan, storage_uri=uri, canary_percent=canary), sort_keys=False
        )
    elif fmt == "args":
        text = shlex.join(argv[2:]) + "\n"
    else:
        text = shlex.join(argv) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


canary_app = typer.Typer(
    help="Canary share of the LLM InferenceService (KServe).", no_args_is_help=True
)
app.add_typer(canary_app, name="canary")

SERVICE = Annotated[str, typer.Option(help="InferenceService name.")]
TARGET = Annotated[
    str | None, typer.Option(help="InferenceService name (leave out to move --split only).")
]
NAMESPACE = Annotated[str, typer.Option(help="Kubernetes namespace.")]
KUBECONFIG = Annotated[
    Path | None, typer.Option(help="kubeconfig file [in-cluster, else ~/.kube/config].")
]
CONTEXT = Annotated[str | None, typer.Option(help="kubeconfig context.")]
SPLIT = Annotated[
    str | None, typer.Option(help="Registry traffic split to move with it (paramstack traffic).")
]


def _patch(service: str | None, namespace: str, kubeconfig: Path | None, context: str | None,
           share: int, split: str | None) -> None:  # fmt: skip
    """Patch the InferenceService and, with ``split``, record the same move on the registry's
    traffic split (with its audit entry) in one transaction that commits only after the
    Kubernetes patch succeeded: the two never disagree because of a failed patch."""
    from contextlib import nullcontext

    from paramstack.cli.context import print_json, registry_session
    from paramstack.deploy import kserve
    from paramstack.errors import ParamstackError

    if service is None and split is None:
        err_console.print(
            "error: name the InferenceService (--service), the split (--split), or both"
        )
        raise typer.Exit(2)
    try:
        with registry_session() if split else nullcontext() as session:
            recorded = _record_share(session, split, share) if session and split else None
            state = None
            if service is not None:
                api = kserve.api(kubeconfig, context)
                state = kserve.set_canary(api, service, namespace, share).as_dict()
    except ParamstackError as exc:
        err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    print_json({**(state or {}), "registry_split": recorded})


def _record_share(session: Any, name: str, share: int) -> dict[str, Any]:
    from paramstack.cli.traffic import audit_change
    from paramstack.registry import traffic

    actor, reason = "deploy canary", f"KServe canary share set to {share} %"
    if share == 100:
        split, action = traffic.promote(session, name, actor=actor, reason=reason), "promote"
    elif share == 0:
        split, action = traffic.rollback(session, name, actor=actor, reason=reason), "rollback"
    else:
        split, action = traffic.set_share(session, name, float(share), actor=actor), "set"
    audit_change(session, split, action)
    return traffic.describe_split(split)


@canary_app.command("promote")
def canary_promote(
    service: TARGET = None,
    namespace: NAMESPACE = "default",
    share: Annotated[int, typer.Option(min=0, max=100, help="Canary share in %.")] = 100,
    kubeconfig: KUBECONFIG = None,
    context: CONTEXT = None,
    split: SPLIT = None,
) -> None:
    """Send SHARE % of the traffic to the latest revision (100 = promote fully)."""
    _patch(service, namespace, kubeconfig, context, share, split)


@canary_app.command("rollback")
def canary_rollback(
    service: TARGET = None,
    namespace: NAMESPACE = "default",
    kubeconfig: KUBECONFIG = None,
    context: CONTEXT = None,
    split: SPLIT = None,
) -> None:
    """All traffic back to the last rolled-out revision (canary share 0)."""
    _patch(service, namespace, kubeconfig, context, 0, split)


@canary_app.command("status")
def canary_status(
    service: SERVICE = "chat",
    namespace: NAMESPACE = "default",
    kubeconfig: KUBECONFIG = None,
    context: CONTEXT = None,
    require_ready: Annotated[bool, typer.Option(help="Exit 1 unless Ready.")] = False,
) -> None:
    """Canary share, readiness and revisions of the InferenceService."""
    from paramstack.cli.context import print_json
    from paramstack.deploy import kserve
    from paramstack.errors import ParamstackError

    try:
        state = kserve.status(kserve.api(kubeconfig, context), service, namespace)
    except ParamstackError as exc:
        err_console.print(f"error: {exc.message}")
        raise typer.Exit(1) from exc
    print_json(state.as_dict())
    if require_ready and not state.ready:
        err_console.print(f"error: {namespace}/{service} is not Ready")
        raise typer.Exit(1)
