"""LoRA SFT with TRL on the real offline base: data building, configs, checkpoints/resume,
MLflow tracking, vocabulary extension, and the CLI's errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.train.chat_data import build_sft_examples, corpus_texts, load_chat_file
from paramstack.train.config import load_config
from paramstack.train.sft import SftConfig
from tests.conftest import SftRun
from tests.llm_support import PARAGRAPHS, write_corpus

ROOT = Path(__file__).parents[1]
SEED = ROOT / "configs/train/seed_tr_en.jsonl"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARAMSTACK_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "paramstack", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip


def test_sft_examples_from_corpus_and_seed_set(tmp_path: Path) -> None:
    texts = corpus_texts([write_corpus(tmp_path / "corpus")])
    seed = load_chat_file(SEED)
    train, heldout = build_sft_examples(texts, seed, max_examples=40, heldout_fraction=0.25, seed=1)
    tasks = {row["task"] for row in train}
    assert {"seed", "continuation", "lead_summary"} <= tasks
    assert len(train) + len(heldout) <= 40 and heldout
    assert all(row["task"] != "seed" for row in heldout)  # seeds always train
    summary = next(r for r in train if r["task"] == "lead_summary")
    passage = summary["messages"][0]["content"]
    assert summary["messages"][1]["content"] in passage  # lead-1 comes from the passage
    cont = next(r for r in train if r["task"] == "continuation")
    head = cont["messages"][0]["content"].split("\n\n", 1)[1]
    joined = head + " " + cont["messages"][1]["content"]
    assert any(p.startswith(joined) for p in PARAGRAPHS)


def test_bad_chat_rows_and_configs_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(InvalidInput, match="at least two messages"):
        load_chat_file(bad)
    bad.write_text('{"messages": [}\n')
    with pytest.raises(InvalidInput, match=r"bad\.jsonl:1: not valid JSON"):
        load_chat_file(bad)
    with pytest.raises(InvalidInput, match="unknown config keys lora_rank"):
        load_config(SftConfig, None, ["lora_rank=8"])
    with pytest.raises(InvalidInput, match="needs a CUDA GPU"):
        load_config(SftConfig, None, ["method=qlora"])
    cfg = load_config(SftConfig, ROOT / "configs/train/sft.yaml", ["max_steps=7"])
    assert cfg.max_steps == 7 and cfg.lora_r == 16


def test_sft_adapter_is_trained_tracked_and_changes_the_model(sft_run: SftRun) -> None:
    import mlflow
    import torch

    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.adapters import load_with_adapter, read_sidecar

    side = read_sidecar(sft_run.adapter_dir)
    assert side["base_model"] == str(sft_run.base)
    assert side["metrics"]["tokens_seen"] > 0 and side["metrics"]["tokens_per_s"] > 0
    assert len(side["lineage"]["data_sha256"]) == 64
    mlflow.set_tracking_uri(f"sqlite:///{sft_run.home / 'mlflow.db'}")
    run = mlflow.get_run(str(sft_run.run_id))
    assert run.data.params["lora_r"] == "4"
    assert "train_loss" in run.data.metrics
    tuned, tok = load_with_adapter(sft_run.adapter_dir)
    base, _ = load_causal_lm(sft_run.base)
    ids = tok("Ankara Türkiye'nin başkentidir.", return_tensors="pt")
    with torch.no_grad():
        diff = (tuned(**ids).logits - base(**ids).logits).abs().max().item()
    assert diff > 1e-4  # the adapter's LoRA B matrices moved off zero


def test_sft_resumes_from_newest_checkpoint(sft_run: SftRun, tmp_path: Path) -> None:
    from paramstack.train.sft import run_sft

    out = tmp_path / "out"
    shutil.copytree(sft_run.adapter_dir.parent, out)
    cfg = SftConfig(
        base_model=str(sft_run.base), data=str(sft_run.data_dir / "train.jsonl"),
        out_dir=str(out), max_steps=4, batch_size=2, max_length=64, save_steps=2,
        lora_r=4, lora_alpha=8, lr=5e-4, mlflow=False,
    )  # fmt: skip
    result = run_sft(cfg, settings=Settings(home=tmp_path / "home"))
    assert str(result.lineage["resumed_from"]).endswith("checkpoint-3")
    assert (out / "checkpoints" / "checkpoint-4").is_dir()


def test_vocabulary_extension_adds_trainable_rows(base_model_dir: Path, tmp_path: Path) -> None:
    import sentencepiece as spm
    import torch

    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.vocab import candidate_pieces, extend_vocabulary

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(PARAGRAPHS * 3), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "tok"), vocab_size=300,
        model_type="unigram", minloglevel=2,
    )  # fmt: skip
    model, tok = load_causal_lm(base_model_dir)
    rows = model.get_input_embeddings().weight.shape[0]
    words = candidate_pieces(tmp_path / "tok.model", tok, max_new=8)
    assert words and all(
        len(tok(" " + w, add_special_tokens=False)["input_ids"]) >= 3 for w in words
    )
    old = [tok(" " + w, add_special_tokens=False)["input_ids"] for w in words]
    ids = extend_vocabulary(model, tok, words)
    weight = model.get_input_embeddings().weight
    assert len(ids) == len(words) and min(ids) >= rows
    assert weight.shape[0] == len(tok)
    torch.testing.assert_close(weight[ids[0]], weight[old[0]].mean(dim=0))
    assert tok(" " + words[0], add_special_tokens=False)["input_ids"][-1] == ids[0]


def test_cli_sft_data_and_errors(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    ok = cli(tmp_path / "home", "train", "sft-data", str(corpus), "--out", str(tmp_path / "d"))
    assert ok.returncode == 0, ok.stderr
    rows = (tmp_path / "d/train.jsonl").read_text().splitlines()
    assert len(rows) > 24 and "messages" in json.loads(rows[0])
    bad = cli(tmp_path / "home", "train", "sft", "max_steps=0")
    assert bad.returncode != 0
    assert "max_steps" in bad.stdout + bad.stderr
    missing = cli(tmp_path / "home", "train", "sft", f"data={tmp_path / 'nope.jsonl'}")
    assert missing.returncode != 0 and "SFT data not found" in missing.stdout + missing.stderr


def test_completion_head_loss_and_gradients_equal_trls(
    base_model_dir: Path, tmp_path: Path
) -> None:
    """Our CPU loss (LM head on completion positions only) is TRL's fused-head loss, with the
    same gradients and the same entropy / accuracy logs."""
    import torch
    from trl import SFTTrainer

    from paramstack.train.chat_data import write_jsonl
    from paramstack.train.sft import build_trainer

    train, _ = build_sft_examples(
        PARAGRAPHS, load_chat_file(SEED), max_examples=8, heldout_fraction=0.0, seed=0
    )
    write_jsonl(tmp_path / "train.jsonl", train)
    cfg = SftConfig(
        base_model=str(base_model_dir), data=str(tmp_path / "train.jsonl"),
        out_dir=str(tmp_path / "out"), max_steps=1, batch_size=3, max_length=64,
        lora_r=4, lora_alpha=8, lora_dropout=0.0, mlflow=False,
    )  # fmt: skip
    trainer, _ = build_trainer(cfg, str(base_model_dir), tmp_path / "out", [])
    assert not trainer.args.activation_checkpointing
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["labels"] == -100).float().mean() > 0.3  # prompts and padding are masked
    model = trainer.model
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    for p in trained:  # LoRA B starts at zero: move it so A's gradients are not all zero
        torch.nn.init.normal_(p, std=0.02)
    results = []
    for compute in (type(trainer).compute_loss, SFTTrainer.compute_loss):
        model.zero_grad()
        loss = compute(trainer, model, dict(batch))
        loss.backward()
        metrics = {k: trainer._metrics["train"][k][-1] for k in ("entropy", "mean_token_accuracy")}
        results.append((loss.detach(), [p.grad.clone() for p in trained], metrics))
    (ours, our_grads, our_logs), (trls, trl_grads, trl_logs) = results
    torch.testing.assert_close(ours, trls, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(our_grads, trl_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-3, atol=1e-5)  # fp32 order
    assert our_logs["mean_token_accuracy"] == pytest.approx(trl_logs["mean_token_accuracy"])
    assert our_logs["entropy"] == pytest.approx(trl_logs["entropy"], rel=1e-4)
    assert trainer._metrics["train"]["num_tokens"][-1] == 2 * batch["attention_mask"].sum().item()
