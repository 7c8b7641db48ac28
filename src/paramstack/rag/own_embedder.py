"""The ``own:<dir>`` embedder: a model trained by ``paramstack rag adapt``, served without torch.

A directory holds ``model.onnx`` (token ids + mask → L2-normalised vector), the
``tokenizer.json`` it was trained with and ``embedder.json`` (dimension, training record).
Queries and passages go through the same encoder (the Inverse-Cloze training is symmetric).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from paramstack.errors import InvalidInput

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META = "embedder.json"
_BATCH = 64


class OwnEmbedder:
    """onnxruntime + ``tokenizers`` over an adapted embedder directory."""

    def __init__(self, folder: Path | str, spec: str | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(folder)
        missing = [f for f in (ONNX_FILE, TOKENIZER_FILE, META) if not (path / f).is_file()]
        if missing:
            raise InvalidInput(
                f"no own embedder in {path} (missing {', '.join(missing)}): "
                "train one with `paramstack rag adapt`",
                param="embedder",
            )
        meta = json.loads((path / META).read_text())
        self.spec = spec or f"own:{folder}"
        self.dim = int(meta["dim"])
        self.meta = meta
        self._tok = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        self._tok.no_padding()
        self._tok.enable_truncation(int(meta["max_tokens"]))
        opts = ort.SessionOptions()
        threads = int(os.environ.get("PARAMSTACK_RAG_EMBED_THREADS", "1"))
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._sess = ort.InferenceSession(
            str(path / ONNX_FILE), opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows = [e.ids or [0] for e in self._tok.encode_batch(texts, add_special_tokens=False)]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        with self._lock:
            out = self._sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(out, np.float32)

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(
            [self._embed(texts[i : i + _BATCH]) for i in range(0, len(texts), _BATCH)]
        )

    def query(self, text: str) -> np.ndarray:
        return self._embed([text])
