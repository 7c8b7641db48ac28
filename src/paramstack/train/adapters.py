"""Load a base causal LM with a LoRA adapter directory on top, and describe where it came from.

An adapter directory holds PEFT's ``adapter_config.json`` + weights, the tokenizer it was
trained with (it may carry extra vocabulary) and ``paramstack.json`` (base model, lineage).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from paramstack.config import Settings
from paramstack.errors import InvalidInput

SIDECAR = "paramstack.json"


def resolve_base(spec: str, settings: Settings | None = None) -> str:
    """``spec`` as given, or the offline default base under the home (fetched on first use)."""
    if spec:
        return spec
    from paramstack.llm.base_model import DEFAULT_BASE_NAME, fetch_default_base

    home = (settings or Settings()).home
    return str(fetch_default_base(home / "models" / "base" / DEFAULT_BASE_NAME))


def file_sha256(path: Path) -> str:
    from paramstack.registry.artifacts import fingerprint

    return fingerprint(Path(path))[0]


def read_sidecar(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / SIDECAR
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def write_sidecar(adapter_dir: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    (Path(adapter_dir) / SIDECAR).write_text(text)


def adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on (from our sidecar, else PEFT's config)."""
    side = read_sidecar(adapter_dir)
    if side.get("base_model"):
        return str(side["base_model"])
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise InvalidInput(f"{adapter_dir}: adapter does not record its base model")
    return str(base)


def load_with_adapter(
    adapter_dir: Path, *, base: str = "", trainable: bool = False
) -> tuple[Any, Any]:
    """(PeftModel, tokenizer) for an adapter directory; the base comes from its record."""
    from peft import PeftModel

    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.vocab import match_vocab_size

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidInput(
            f"{adapter_dir} is not a LoRA adapter directory (no adapter_config.json)"
        )
    model, tokenizer = load_causal_lm(base or adapter_base(adapter_dir))
    if (adapter_dir / "tokenizer_config.json").is_file():  # trained with this (maybe extended)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    match_vocab_size(model, tokenizer)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    if not trainable:
        peft_model.eval()
    return peft_model, tokenizer


def merged_model(adapter_dir: Path, *, base: str = "") -> tuple[Any, Any]:
    """Base + adapter folded into plain weights (what the ONNX export and fast eval use)."""
    model, tokenizer = load_with_adapter(adapter_dir, base=base)
    return model.merge_and_unload(), tokenizer


def digest_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
