"""`dvc repro` of the own-parameters pipeline at CI size, offline, stage by stage from the SFT
data on (the sample/clean/tokenizer stages belong to the data helper's commands; their
outputs are stood in for by the test corpus). Ends with eval metrics DVC can show and diff,
and both versions (adapter, merged ONNX) in the registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.llm_support import write_corpus

ROOT = Path(__file__).parents[1]
STAGES = ("sft-data", "sft", "rlaif", "dpo", "eval", "export", "register")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_dvc_repro_ci_size(base_model_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "pipeline"
    (work / "configs/train").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", work)
    shutil.copy(ROOT / "configs/train/seed_tr_en.jsonl", work / "configs/train")
    params = yaml.safe_load((ROOT / "tests/data/params-ci.yaml").read_text())
    for section in ("sft", "rlaif", "eval"):
        params[section]["base_model"] = str(base_model_dir)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    write_corpus(work / "build/data/clean")
    write_corpus(work / "build/data/raw/heldout")
    (work / "build/data/raw/train").mkdir(parents=True)
    (work / "build/tokenizer").mkdir(parents=True)
    (work / "build/tokenizer/README").write_text("stand-in: CI runs without extend_vocab\n")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ, "PARAMSTACK_HOME": str(tmp_path / "home"), "COLUMNS": "200",
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "src"),
        "DVC_NO_ANALYTICS": "1",
    }  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run("dvc", "init", "--no-scm", "-q")
    for stage in STAGES:
        run("dvc", "repro", "-s", stage)
    shown = json.loads(run("dvc", "metrics", "show", "--json"))
    metrics = json.dumps(shown)
    for key in ("ppl_base", "ppl_sft", "ppl_dpo", "winrate_dpo_vs_sft", "dpo_reward_accuracy"):
        assert key in metrics
    adapter = json.loads((work / "build/register-adapter.json").read_text())
    onnx = json.loads((work / "build/register-onnx.json").read_text())
    assert adapter["type"] == "adapter" and adapter["lineage"]["recipe"] == "dpo"
    assert adapter["lineage"]["base_model"] == str(base_model_dir)
    assert onnx["type"] == "onnx" and onnx["metrics"]["onnx_greedy_equal"] == 2
    assert "up to date" in run("dvc", "repro", "-s", "eval").lower()
