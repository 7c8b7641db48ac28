"""``paramstack train dpo``: TRL DPO with LoRA on RLAIF preference pairs.

Started from an SFT adapter (the usual path), the adapter itself keeps training and TRL keeps
a frozen copy of it as the reference ("ref" adapter), so the result is still a single adapter
on the original base. Without one, a fresh LoRA is trained against the base (adapter off).
Reward accuracy and margin are measured on held-out pairs the run never trained on.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.train import trainer_support as ts
from paramstack.train.adapters import (
    file_sha256,
    load_with_adapter,
    read_sidecar,
    resolve_base,
    write_sidecar,
)
from paramstack.train.chat_data import read_jsonl
from paramstack.train.run_config import LoraRunConfig


@dataclass
class DpoConfig(LoraRunConfig):
    """Every knob of ``paramstack train dpo``."""

    pairs: str = "build/rlaif/pairs.jsonl"
    sft_adapter: str | None = "build/sft/adapter"  # None: fresh LoRA on base_model
    base_model: str = ""  # "" = the SFT adapter's base, else the offline default
    out_dir: str = "build/dpo"
    beta: float = 0.1
    heldout_fraction: float = 0.2
    max_steps: int = 50
    batch_size: int = 2
    lr: float = 5e-5
    save_steps: int = 25
    experiment: str = "llm-dpo"

    def __post_init__(self) -> None:
        if self.beta <= 0 or not 0 < self.heldout_fraction < 1:
            raise InvalidInput("beta must be > 0 and heldout_fraction in (0, 1)")
        if min(self.max_steps, self.batch_size, self.grad_accum, self.save_steps) < 1:
            raise InvalidInput("max_steps, batch_size, grad_accum, save_steps must be >= 1")


def pair_rows(path: Path) -> list[dict[str, Any]]:
    """Conversational DPO rows from RLAIF pairs; a malformed pair names its line."""
    if not Path(path).is_file():
        raise InvalidInput(f"preference pairs not found: {path} (run `rlaif generate`)")
    rows = []
    for i, row in enumerate(read_jsonl(path), 1):
        texts = [row.get(k) for k in ("prompt", "chosen", "rejected")]
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise InvalidInput(f"{path}:{i}: a pair needs non-empty prompt, chosen and rejected")
        if row["chosen"] == row["rejected"]:
            continue  # no preference signal
        rows.append(
            {
                "prompt": [{"role": "user", "content": row["prompt"]}],
                "chosen": [{"role": "assistant", "content": row["chosen"]}],
                "rejected": [{"role": "assistant", "content": row["rejected"]}],
            }
        )
    if len(rows) < 2:
        raise InvalidInput(f"{path}: need at least 2 pairs with different chosen/rejected")
    return rows


def split_pairs(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[Any, Any]:
    from datasets import Dataset

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    n_eval = max(1, round(len(shuffled) * fraction))
    return Dataset.from_list(shuffled[n_eval:]), Dataset.from_list(shuffled[:n_eval])


def _policy(cfg: DpoConfig, settings: Settings | None) -> tuple[Any, Any, str, Any]:
    """(model, tokenizer, base, peft_config or None)."""
    if cfg.sft_adapter:
        sft = Path(cfg.sft_adapter)
        model, tokenizer = load_with_adapter(sft, base=cfg.base_model, trainable=True)
        return model, tokenizer, cfg.base_model or read_sidecar(sft).get("base_model", ""), None
    from paramstack.llm.base_model import load_causal_lm

    base = resolve_base(cfg.base_model, settings)
    model, tokenizer = load_causal_lm(base)
    peft = ts.lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)
    return model, tokenizer, base, peft


def copy_token_rows_to_reference(model: Any) -> None:
    """TRL copies the SFT adapter's ``.default.`` parameters into the frozen "ref" adapter, but
    PEFT names the trained rows of an extended vocabulary ``...trainable_tokens_delta.default``
    (no dot after it), so the reference kept their starting values and was not the SFT model
    for the new words (a non-zero reward margin before any DPO step). Copy them too."""
    import torch

    if "ref" not in getattr(model, "peft_config", {}):
        return
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in params.items():
            ref = name.removesuffix(".default") + ".ref"
            if name.endswith(".default") and ref in params:
                params[ref].copy_(param)


def run_dpo(
    cfg: DpoConfig, *, settings: Settings | None = None, progress: ts.Progress | None = None
) -> dict[str, Any]:
    """Train, evaluate on held-out pairs, save ``out_dir/adapter``; returns metrics + lineage."""
    from trl import DPOConfig, DPOTrainer

    from paramstack.ecg.tracking import tracking_run

    out = Path(cfg.out_dir)
    train, heldout = split_pairs(pair_rows(Path(cfg.pairs)), cfg.heldout_fraction, cfg.seed)
    with tracking_run(cfg, settings) as tracking:
        tracking.log_params(cfg)
        model, tokenizer, base, peft = _policy(cfg, settings)
        args = DPOConfig(
            **ts.common_args(cfg, out / "checkpoints"),
            beta=cfg.beta,
            max_length=cfg.max_length,
            per_device_eval_batch_size=cfg.batch_size,
        )
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=train, eval_dataset=heldout,
            processing_class=tokenizer, peft_config=peft,
            callbacks=ts.callbacks(progress, tracking),
        )  # fmt: skip
        ts.quiet_trainer(trainer)
        ts.give_token_wrappers_a_bias(trainer.model)
        copy_token_rows_to_reference(trainer.model)
        if len(trainer.train_dataset) == 0 or len(trainer.eval_dataset) == 0:
            raise InvalidInput(
                f"no preference pair fits max_length={cfg.max_length} tokens after "
                f"tokenisation ({len(train)} train / {len(heldout)} held-out pairs before): "
                "raise max_length or shorten the prompts",
                param="max_length",
            )
        before = trainer.evaluate()
        resume = ts.last_checkpoint(out / "checkpoints") if cfg.resume else None
        start = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - start
        after = trainer.evaluate()
        metrics = {
            "train_loss": float(output.training_loss),
            "train_seconds": round(seconds, 2),
            "heldout_pairs": float(len(heldout)),
            "reward_accuracy": float(after["eval_rewards/accuracies"]),
            "reward_margin": float(after["eval_rewards/margins"]),
            "reward_accuracy_before": float(before["eval_rewards/accuracies"]),
            "reward_margin_before": float(before["eval_rewards/margins"]),
            "eval_loss_before": float(before["eval_loss"]),
            "eval_loss": float(after["eval_loss"]),
        }
        adapter_dir = out / "adapter"
        trainer.model.save_pretrained(str(adapter_dir), selected_adapters=["default"])
        tokenizer.save_pretrained(str(adapter_dir))
        lineage = {
            "recipe": "dpo",
            "base_model": base,
            "sft_adapter": cfg.sft_adapter,
            "data": cfg.pairs,
            "data_sha256": file_sha256(Path(cfg.pairs)),
            "config": dataclasses.asdict(cfg),
            "mlflow_run_id": tracking.run_id,
        }
        write_sidecar(adapter_dir, {"base_model": base, "lineage": lineage, "metrics": metrics})
        for key, value in metrics.items():
            tracking.log_metric(key, value, trainer.state.global_step)
    meta = {"metrics": metrics, "lineage": lineage}
    (out / "metrics.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta
