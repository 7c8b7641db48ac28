"""The knobs every adapter-training recipe shares (SFT, DPO): LoRA shape, the optimisation
loop, checkpoints and tracking. Each recipe subclasses it and adds or re-defaults its own."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class LoraRunConfig:
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    grad_accum: int = 1
    max_length: int = 256
    # Trade about a third more compute for activation memory (7B models on one GPU).
    activation_checkpointing: bool = False
    resume: bool = True
    seed: int = 0
    mlflow: bool = True
    mlflow_uri: str | None = None  # default sqlite:///<home>/mlflow.db
