"""``paramstack train sft``: LoRA / QLoRA supervised fine-tuning of a causal LM with PEFT + TRL.

The output directory holds ``adapter/`` (PEFT adapter + tokenizer + ``paramstack.json`` with
lineage), ``checkpoints/`` (resumed automatically when the same directory is reused) and
``metrics.json``. Loss is computed on the assistant answers only (prompt/completion form).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.train import trainer_support as ts
from paramstack.train.adapters import file_sha256, resolve_base, write_sidecar
from paramstack.train.chat_data import load_chat_file, to_prompt_completion
from paramstack.train.run_config import LoraRunConfig
from paramstack.train.trainer_support import quiet_trainer


@dataclass
class SftConfig(LoraRunConfig):
    """Every knob of ``paramstack train sft`` (YAML in configs/train/, key=value overrides)."""

    base_model: str = ""  # local dir, .gguf file or hub id; "" = offline default base
    data: str = "build/sft-data/train.jsonl"  # JSONL chat rows ({"messages": [...]})
    out_dir: str = "build/sft"
    method: str = "lora"  # lora | qlora (4-bit, CUDA + bitsandbytes only)
    max_steps: int = 100
    batch_size: int = 4
    lr: float = 2e-4
    save_steps: int = 50
    extend_vocab: str | None = None  # own tokenizer.model: add its frequent whole words
    extend_vocab_max: int = 64
    experiment: str = "llm-sft"

    def __post_init__(self) -> None:
        ts.check_method(self.method)
        if min(self.max_steps, self.batch_size, self.grad_accum, self.lora_r, self.save_steps) < 1:
            raise InvalidInput("max_steps, batch_size, grad_accum, lora_r, save_steps must be >= 1")
        if self.lr <= 0 or self.max_length < 16:
            raise InvalidInput("lr must be positive and max_length >= 16")


@dataclass
class SftResult:
    adapter_dir: Path
    run_id: str | None
    metrics: dict[str, float]
    lineage: dict[str, Any]


def train_dataset(path: Path) -> Any:
    from datasets import Dataset

    if not Path(path).is_file():
        raise InvalidInput(f"SFT data not found: {path} (build it with `train sft-data`)")
    return Dataset.from_list([to_prompt_completion(m) for m in load_chat_file(path)])


def _load(cfg: SftConfig, base: str) -> tuple[Any, Any, list[int]]:
    import torch
    from transformers import AutoModelForCausalLM

    from paramstack.llm.base_model import ModelSource, load_tokenizer
    from paramstack.train.vocab import candidate_pieces, extend_vocabulary

    name, kwargs = ModelSource.parse(base).from_pretrained_args()
    quant = ts.quantization_config(cfg.method)
    if quant is not None:
        kwargs["quantization_config"] = quant
    dtype = torch.float32 if ts.use_cpu() else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
    tokenizer = load_tokenizer(base)
    new_ids: list[int] = []
    if cfg.extend_vocab:
        words = candidate_pieces(Path(cfg.extend_vocab), tokenizer, max_new=cfg.extend_vocab_max)
        new_ids = extend_vocabulary(model, tokenizer, words)
    return model, tokenizer, new_ids


def build_trainer(
    cfg: SftConfig, base: str, out: Path, callbacks: list[Any]
) -> tuple[Any, list[int]]:
    """The configured TRL SFTTrainer (also used by bench/sft.py)."""
    from trl import SFTConfig

    from paramstack.train.completion_head import completion_head_trainer_class

    model, tokenizer, new_ids = _load(cfg, base)
    args = SFTConfig(
        **ts.common_args(cfg, out / "checkpoints"),
        max_length=cfg.max_length,
        packing=False,
        completion_only_loss=True,
        dataset_num_proc=None,
    )
    peft = ts.lora_config(
        cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules, new_ids or None
    )
    trainer = completion_head_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_dataset(Path(cfg.data)),
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=callbacks,
    )
    quiet_trainer(trainer)
    ts.give_token_wrappers_a_bias(trainer.model)  # TRL's fused head on CUDA reads it
    return trainer, new_ids


def run_sft(
    cfg: SftConfig, *, settings: Settings | None = None, progress: ts.Progress | None = None
) -> SftResult:
    """Train (resuming the newest checkpoint in ``out_dir``), save the adapter, record lineage."""
    from paramstack.ecg.tracking import tracking_run

    out = Path(cfg.out_dir)
    base = resolve_base(cfg.base_model, settings)
    with tracking_run(cfg, settings) as tracking:
        tracking.log_params(cfg)
        trainer, new_ids = build_trainer(cfg, base, out, ts.callbacks(progress, tracking))
        resume = ts.last_checkpoint(out / "checkpoints") if cfg.resume else None
        start = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - start
        tokens = float(trainer.state.num_input_tokens_seen or 0)
        metrics = {
            "train_loss": float(output.training_loss),
            "train_seconds": round(seconds, 2),
            "tokens_seen": tokens,
            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else 0.0,
            "new_tokens": float(len(new_ids)),
        }
        adapter_dir = out / "adapter"
        trainer.save_model(str(adapter_dir))
        trainer.processing_class.save_pretrained(str(adapter_dir))
        lineage = {
            "recipe": "sft",
            "base_model": base,
            "data": cfg.data,
            "data_sha256": file_sha256(Path(cfg.data)),
            "tokenizer": cfg.extend_vocab or "base",
            "tokenizer_sha256": file_sha256(Path(cfg.extend_vocab)) if cfg.extend_vocab else None,
            "config": dataclasses.asdict(cfg),
            "mlflow_run_id": tracking.run_id,
            "resumed_from": resume,
        }
        write_sidecar(adapter_dir, {"base_model": base, "lineage": lineage, "metrics": metrics})
        for key, value in metrics.items():
            tracking.log_metric(key, value, trainer.state.global_step)
    meta = {"metrics": metrics, "lineage": lineage}
    (out / "metrics.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return SftResult(adapter_dir, tracking.run_id, metrics, lineage)
