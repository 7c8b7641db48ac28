"""``paramstack deploy vllm``: the launch command and the chart values from a real registry
(a base model and PEFT LoRA adapters registered and promoted, tenants pointing at them), flags
checked against the pinned vLLM, and the Helm template emitting exactly the same flags."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.config import Settings
from paramstack.deploy import validators
from paramstack.deploy import vllm as launch
from paramstack.deploy.check import Layout
from paramstack.registry import tenants
from paramstack.registry import versions as registry
from paramstack.registry.tenants import TenantSpec
from paramstack.registry.versions import Registration
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import Stage

CHART = Path(__file__).parents[1] / "deploy" / "helm" / "paramstack"
CRDS = Layout(Path(__file__).parents[1]).crds
runner = CliRunner()


@pytest.fixture(scope="module")
def adapters(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real PEFT LoRA adapters (ranks 8 and 32) over the offline SmolLM2 base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = {}
    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    for name, rank in (("acme-lora", 32), ("globex-lora", 8)):
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"])
        path = tmp_path_factory.mktemp(name) / name
        peft_model = get_peft_model(base, config)
        peft_model.save_pretrained(path)
        base = peft_model.unload()  # the plain base again, for the next adapter
        out[name] = path
    return out


def fill_registry(settings: Settings, base: Path, adapters: dict[str, Path]) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as s:
            for name, path, kind in [("smollm2", base, "transformers")] + [
                (n, p, "adapter") for n, p in adapters.items()
            ]:
                version = registry.register(
                    s, Registration(name=name, artifact=path, type=kind, domain="llm"),
                    settings.resolved_artifacts_dir,
                )  # fmt: skip
                registry.set_stage(s, name, version.version, Stage.PRODUCTION)
            for tenant, adapter in (("acme", "acme-lora"), ("globex", "globex-lora"), ("x", None)):
                tenants.create_tenant(
                    s, TenantSpec(id=tenant, name=tenant, default_adapter=adapter)
                )
    finally:
        engine.dispose()


def deploy_vllm(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("PARAMSTACK_HOME", str(settings.home))
    result = runner.invoke(app, ["deploy", "vllm", *args])
    return result.exit_code, result.output


DRAFT = "HuggingFaceTB/SmolLM2-135M-Instruct"
COMMON = ("--base", "smollm2", "--artifact-uri-prefix", "s3://models/artifacts",
          "--tensor-parallel-size", "2", "--draft-model", DRAFT)  # fmt: skip


def test_command_from_the_registry_with_adapters_fp8_and_a_draft_model(
    settings: Settings, base_model_dir: Path, adapters: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fill_registry(settings, base_model_dir, adapters)
    code, out = deploy_vllm(settings, monkeypatch, *COMMON)
    assert code == 0, out
    argv = shlex.split(out)
    assert argv[:3] == ["vllm", "serve", f"s3://models/artifacts/smollm2/v1/{base_model_dir.name}"]
    assert {"--enable-lora", "--max-loras=4", "--kv-cache-dtype=fp8"} <= set(argv)
    assert "--max-lora-rank=32" in argv  # the larger adapter's rank
    assert "--tensor-parallel-size=2" in argv
    modules = argv[argv.index("--lora-modules") + 1 : argv.index("--lora-modules") + 3]
    assert modules == [
        "acme-lora=s3://models/artifacts/acme-lora/v1/acme-lora",
        "globex-lora=s3://models/artifacts/globex-lora/v1/globex-lora",
    ]
    spec = next(a for a in argv if a.startswith("--speculative-config="))
    assert json.loads(spec.partition("=")[2]) == {"model": DRAFT, "num_speculative_tokens": 4}
    assert launch.check_flags(argv) == []


def test_values_render_to_the_same_flags_in_a_valid_inference_service(
    settings: Settings, base_model_dir: Path, adapters: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fill_registry(settings, base_model_dir, adapters)
    code, out = deploy_vllm(settings, monkeypatch, *COMMON, "--format", "values", "--canary", "10")
    assert code == 0, out
    values = yaml.safe_load(out)
    problems, docs = validators.helm(CHART, values)
    assert problems == []
    assert validators.kubernetes(docs, CRDS) == []
    [isvc] = [d for d in docs if d["kind"] == "InferenceService"]
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    code, args_out = deploy_vllm(settings, monkeypatch, *COMMON, "--format", "args")
    cli_args = shlex.split(args_out)
    assert predictor["model"]["args"] == cli_args[1:-1]  # same flags, same order (minus model/port)
    assert predictor["model"]["storageUri"] == cli_args[0]


def test_unknown_flags_bad_choices_and_missing_adapters_are_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert launch.check_flags(["--enable-loras", "--kv-cache-dtype=fp8"]) == [
        f"--enable-loras is not a flag of vLLM {launch.pinned()['vllm']}"
    ]
    [problem] = launch.check_flags(["--kv-cache-dtype=fp9"])
    assert "fp9" in problem and "fp8" in problem
    code, out = deploy_vllm(settings, monkeypatch, "--kv-cache-dtype", "fp9")
    assert code == 2 and "fp9" in out

    engine = make_engine(settings.resolved_database_url)
    with transaction(session_factory(engine)) as s:
        tenants.create_tenant(s, TenantSpec(id="acme", name="Acme", default_adapter="ghost"))
    engine.dispose()
    code, out = deploy_vllm(settings, monkeypatch)
    assert code == 1 and "adapter 'ghost'" in out and "no production version" in out


def test_the_chart_accepts_only_the_pinned_vllm_choices() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["llm"]
    choices = launch.pinned()["choices"]
    assert schema["properties"]["kvCacheDtype"]["enum"] == choices["--kv-cache-dtype"]
    assert schema["properties"]["maxLoraRank"]["enum"] == choices["--max-lora-rank"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["llm"]["runtimeImage"].endswith(f":v{launch.pinned()['vllm']}")
