"""What SFT and DPO share around a TRL trainer: device choice, QLoRA gate, LoRA config,
progress and MLflow callbacks, and resuming from the newest checkpoint."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

# progress(step, total_steps, last_loss)
Progress = Callable[[int, int, float], None]
METHODS = ("lora", "qlora")


def use_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def check_method(method: str) -> None:
    """QLoRA needs bitsandbytes and a CUDA GPU; say so instead of failing deep inside."""
    if method not in METHODS:
        raise InvalidInput(f"method {method!r}; valid: {', '.join(METHODS)}", param="method")
    if method == "qlora":
        if use_cpu():
            raise InvalidInput(
                "method=qlora needs a CUDA GPU (4-bit bitsandbytes kernels); this machine has "
                "none: use method=lora",
                param="method",
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise InvalidInput(
                "method=qlora needs the bitsandbytes package (pip install bitsandbytes)",
                param="method",
            )


def quantization_config(method: str) -> Any | None:
    if method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def lora_config(
    r: int,
    alpha: int,
    dropout: float,
    target_modules: list[str],
    trainable_token_indices: list[int] | None = None,
) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
        trainable_token_indices={"embed_tokens": trainable_token_indices}
        if trainable_token_indices
        else None,
    )


def last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def callbacks(progress: Progress | None, tracking: Any) -> list[Any]:
    """A progress callback (CLI bar) and an MLflow one (our own store, not report_to)."""
    from transformers import TrainerCallback

    class _Report(TrainerCallback):  # type: ignore[misc]
        loss = math.nan

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            for key, value in (logs or {}).items():
                if isinstance(value, int | float) and math.isfinite(value):
                    tracking.log_metric(key.replace("/", "_"), float(value), state.global_step)
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if progress is not None:
                progress(state.global_step, state.max_steps, self.loss)

    return [_Report()]


def common_args(cfg: Any, out: Path) -> dict[str, Any]:
    """TrainingArguments shared by SFT and DPO, CPU-safe (no bf16, no workers)."""
    cpu = use_cpu()
    return {
        "output_dir": str(out),
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(0, cfg.max_steps // 10),
        "logging_steps": max(1, min(10, cfg.max_steps // 5)),
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "seed": cfg.seed,
        "use_cpu": cpu,
        "bf16": not cpu,
        "fp16": False,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        # TRL turns it on by default; it recomputes every layer's forward in the backward pass
        # (about a third more compute) to save activation memory that small models don't need.
        "activation_checkpointing": bool(getattr(cfg, "activation_checkpointing", False)),
    }


def give_token_wrappers_a_bias(model: Any) -> None:
    """TRL's fused LM head reads ``lm_head.weight`` and ``lm_head.bias``; PEFT's wrapper for
    trainable tokens (vocabulary extension, tied to the LM head) forwards only ``weight``
    (merged with the adapter's rows), so DPO failed with an AttributeError. The wrapper gets
    the bias of the layer it wraps, as a plain attribute (not a second registered parameter)."""
    from peft.utils.other import TrainableTokensWrapper

    for module in model.modules():
        if isinstance(module, TrainableTokensWrapper) and "bias" not in vars(module):
            object.__setattr__(module, "bias", getattr(module.original_module, "bias", None))


def quiet_trainer(trainer: Any) -> None:
    """Our progress bar replaces transformers' per-log prints and datasets' bars."""
    import datasets
    from transformers import PrinterCallback

    datasets.disable_progress_bars()
    trainer.remove_callback(PrinterCallback)
