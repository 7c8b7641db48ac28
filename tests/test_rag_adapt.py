"""``rag adapt``: a real (tiny) Inverse-Cloze training run, its ONNX export, the ``own:`` embedder
kind through a real edge store, and the errors a user can hit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.errors import InvalidInput
from paramstack.rag.adapt import AdaptConfig, adapt
from paramstack.rag.embedders import get_embedder
from paramstack.rag.index import RagIndex
from paramstack.rag.loaders import make_document
from paramstack.rag.own_embedder import ONNX_FILE, OwnEmbedder
from paramstack.rag.stores.protocol import open_store

TOPICS = {
    "liman": ["Gemiler sabah limana yanaştı.", "Liman işçileri yükleri boşalttı.",
              "Kaptan gemiyi rıhtıma bağladı.", "Denizciler limanda dinlendi."],
    "okul": ["Öğretmen sınıfa girdi ve ders başladı.", "Öğrenciler okulda kitap okudu.",
             "Okul bahçesinde çocuklar oynadı.", "Sınav haftası okulda sessiz geçti."],
    "tarla": ["Çiftçi tarlayı sürdü ve buğday ekti.", "Yağmur tarlaya bereket getirdi.",
              "Hasat zamanı köylüler tarlada çalıştı.", "Traktör tarlanın kenarında durdu."],
    "meclis": ["Meclis yeni kanunu görüştü.", "Milletvekilleri mecliste oy kullandı.",
               "Meclis başkanı oturumu açtı.", "Kanun teklifi mecliste kabul edildi."],
}  # fmt: skip
TINY = AdaptConfig(
    base="minilm", dim=16, epochs=40, batch_size=4, lr=0.05,
    token_dropout=0.0, min_sentence_chars=10, threads=1, mlflow=False,
)  # fmt: skip


def tiny_base(folder: Path) -> Path:
    """A stand-in for the all-MiniLM-L6-v2 folder (tokenizer.json + word vectors): a fixed
    WordPiece vocabulary of the topics' words and seeded random 32-wide vectors."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = sorted(
        {
            w
            for sents in TOPICS.values()
            for t in sents
            for w, _ in pre.pre_tokenize_str(norm.normalize_str(t))
        }
    )
    vocab = {"[PAD]": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(words)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = norm, pre
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    vectors = torch.randn(len(vocab), 32, generator=torch.Generator().manual_seed(0))
    save_file({"embeddings.word_embeddings.weight": vectors}, str(folder / "model.safetensors"))
    return folder


def corpus_file(folder: Path) -> Path:
    path = folder / "corpus.jsonl"
    rows = [
        {"id": f"{name}{i}", "text": " ".join(sents[i:] + sents[:i])}
        for name, sents in TOPICS.items()
        for i in range(2)
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return path


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    folder = tmp_path_factory.mktemp("adapt")
    texts = [json.loads(x)["text"] for x in corpus_file(folder).read_text().splitlines()]
    losses: list[float] = []
    cfg = dataclasses.replace(TINY, mlflow=True, base_dir=str(tiny_base(folder / "base")))
    result = adapt(
        texts, folder / "emb", cfg, home=folder, progress=lambda s, t, loss: losses.append(loss)
    )
    assert result.steps == len(losses) == 40 * 2 and result.passages == 8
    assert result.parity_max_abs < 1e-4
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    assert len(client.get_metric_history(str(result.run_id), "loss")) == 80
    assert ONNX_FILE in {a.path for a in client.list_artifacts(str(result.run_id))}
    again = adapt(texts, folder / "emb2", dataclasses.replace(cfg, mlflow=False), home=folder)
    assert again.final_loss == result.final_loss  # seeded and deterministic
    return folder / "emb", losses


def test_adapt_trains_exports_onnx_and_learns_the_pairs(adapted: tuple[Path, list[float]]) -> None:
    folder, losses = adapted
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])  # in-batch InfoNCE went down
    assert (folder / ONNX_FILE).stat().st_size > 0
    meta = json.loads((folder / "embedder.json").read_text())
    assert meta["dim"] == 16 and meta["config"]["seed"] == 0 and meta["passages"] == 8
    emb = OwnEmbedder(folder)
    passages = [" ".join(s[1:]) for s in TOPICS.values()]
    queries = [s[0] for s in TOPICS.values()]  # each topic's sentence -> the rest of its topic
    p, q = emb.passages(passages), np.vstack([emb.query(x) for x in queries])
    assert p.shape == (4, 16) and np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert list((q @ p.T).argmax(1)) == [0, 1, 2, 3]


def test_own_embedder_kind_round_trips_through_an_edge_store(
    adapted: tuple[Path, list[float]], tmp_path: Path
) -> None:
    folder, _ = adapted
    spec = f"own:{folder}"
    assert get_embedder(spec).dim == 16
    store = open_store(str(tmp_path / "store"))
    try:
        index = RagIndex(store, "t1", "c")
        docs = [make_document(n, " ".join(s), n, {}) for n, s in TOPICS.items()]
        index.ingest(docs, embedder=index.embedder(spec))
        info = index.info()
        assert info is not None and info.embedder == spec and info.dim == 16
        for name, sents in TOPICS.items():  # a trained sentence finds its topic's document
            assert index.query(sents[0], k=1, mode="dense")[0].doc_id == name
    finally:
        store.close()


def test_adapt_cli_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": "Tek cümle."}) + "\n")
    runner = CliRunner()
    res = runner.invoke(
        app, ["rag", "adapt", str(empty), "-o", str(tmp_path / "o"), "--set", "base=scratch"]
    )
    assert isinstance(res.exception, InvalidInput) and "empty corpus" in str(res.exception)
    res = runner.invoke(
        app, ["rag", "adapt", str(empty), "-o", str(tmp_path / "o"), "--set", "epochs=0"]
    )
    assert isinstance(res.exception, InvalidInput)
    res = runner.invoke(app, ["rag", "adapt", str(empty), "-o", "x", "--set", "epoch=3"])
    assert isinstance(res.exception, InvalidInput) and "unknown config keys" in str(res.exception)
    res = runner.invoke(app, ["rag", "adapt", str(tmp_path / "none.jsonl"), "-o", "x"])
    assert isinstance(res.exception, InvalidInput) and "not found" in str(res.exception)
    with pytest.raises(InvalidInput, match="rag adapt"):
        get_embedder(f"own:{tmp_path / 'missing'}")


def test_mix_embedder_weights_the_parts_cosines(adapted: tuple[Path, list[float]]) -> None:
    folder, _ = adapted
    own = get_embedder(f"own:{folder}")
    mix = get_embedder(f"mix:1*own:{folder};3*own:{folder}")
    assert mix.dim == 32 and mix.spec.startswith("mix:")
    texts = [" ".join(s) for s in TOPICS.values()]
    p_own, p_mix = own.passages(texts), mix.passages(texts)
    q_own, q_mix = own.query("Okulda ders var."), mix.query("Okulda ders var.")
    assert np.allclose(q_mix @ p_mix.T, q_own @ p_own.T, atol=1e-5)  # (1 c + 3 c) / 4 = c
    assert np.allclose(np.linalg.norm(p_mix, axis=1), 1.0, atol=1e-5)
    for bad in ("mix:own", "mix:0*use-m3", "mix:x*use-m3", "mix:1*mix:1*use-m3"):
        with pytest.raises(InvalidInput, match="bad mix part"):
            get_embedder(bad)


def test_scratch_base_learns_a_vocabulary_from_the_corpus(tmp_path: Path) -> None:
    texts = [" ".join(s) for s in TOPICS.values()]
    cfg = dataclasses.replace(TINY, base="scratch", vocab_size=100, width=8, epochs=2)
    result = adapt(texts, tmp_path / "emb", cfg, home=tmp_path)
    emb = OwnEmbedder(tmp_path / "emb")
    assert result.steps == 2 and emb.dim == 16 and emb.meta["config"]["base"] == "scratch"
    assert emb.passages(texts).shape == (4, 16)
