"""The policy's Presidio backend (``pii.presidio: true``): names and places from a spaCy NER.

Only Presidio's NER recognizer runs here, on the spaCy pipeline named by ``pii.presidio_model``
(a package name or a directory; none = a blank pipeline, which finds nothing): structured ids
stay with our checksum-validated finders, so Presidio's loose phone matcher never comes back.
Spans arrive under our names (``PERSON``, ``LOCATION`` → ``ADDRESS``) and are resolved against
ours by :func:`~paramstack.guard.pii.resolve_overlaps` (an id beats a name it overlaps).

The pipeline is loaded when the guard is built, once per (model, entities) for the process
(tenant guards share it); a missing extra or model is a ``bad_policy`` error then, never a
500 per request. NER costs milliseconds per kB where our patterns cost a tenth of one, which
is why it is opt-in.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput
from paramstack.guard.pii_patterns import Span

log = logging.getLogger(__name__)
# Presidio's NER entity -> our mask name.
NER_ENTITIES = {
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
    "ORGANIZATION": "ORGANIZATION",
    "NRP": "NRP",
}
# Our own masks and placeholders ("[PERSON_1]") in a model's answer: a name-like token to a
# NER, but it must reach MaskSession.restore untouched.
_MASK = re.compile(r"\[[A-Z][A-Z_]*(?:_\d+)?\]")
# Weak values: a pipeline lives while some guard uses it (tenant overrides come and go).
_SHARED: weakref.WeakValueDictionary[tuple[str, float, tuple[str, ...]], NerRecognizer] = (
    weakref.WeakValueDictionary()
)
_SHARED_LOCK = threading.Lock()


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="bad_policy")


def ensure_available(model: str | None) -> None:
    """Raise ``bad_policy`` when the extra or the named pipeline is missing (loads nothing).

    Presidio would otherwise try to download a missing model over the network."""
    if any(importlib.util.find_spec(name) is None for name in ("presidio_analyzer", "spacy")):
        raise _bad(
            "pii.presidio is on but Presidio is not installed: pip install 'paramstack[presidio]'"
        )
    if model is None:
        return
    import spacy.util

    if not (Path(model).is_dir() or spacy.util.is_package(model)):
        raise _bad(
            f"pii.presidio_model {model!r} is neither a spaCy pipeline directory nor an "
            "installed spaCy package"
        )


class NerRecognizer:
    """Presidio's analyzer with only its spaCy NER recognizer, behind our ``Recognizer``."""

    def __init__(self, model: str | None, entities: Sequence[str]) -> None:
        ensure_available(model)
        unknown = sorted(set(entities) - set(NER_ENTITIES))
        if unknown:
            raise _bad(f"unknown pii.presidio_entities {unknown}; valid: {sorted(NER_ENTITIES)}")
        nlp = _load_pipeline(model)
        if model is not None and "ner" not in nlp.pipe_names:
            raise _bad(f"pii.presidio_model {model!r} has no 'ner' component")
        if model is None:
            log.warning("pii.presidio is on with a blank spaCy pipeline: it finds no names")
        self.model = model
        self.entities = tuple(NER_ENTITIES[e] for e in entities)
        self._wanted = list(entities)
        self._language = str(nlp.lang)
        self._engine = _analyzer(nlp, model, self._wanted)
        self._lock = threading.Lock()  # spaCy does not promise thread-safe inference

    def analyze(self, text: str) -> list[Span]:
        with self._lock:
            results = self._engine.analyze(text, language=self._language, entities=self._wanted)
        masks = [m.span() for m in _MASK.finditer(text)] if "[" in text else []
        return [
            Span(r.start, r.end, NER_ENTITIES[r.entity_type], "presidio.ner", float(r.score))
            for r in results
            if r.entity_type in NER_ENTITIES
            and not any(r.start < end and start < r.end for start, end in masks)
        ]


def _load_pipeline(model: str | None) -> Any:
    import spacy

    if model is None:
        return spacy.blank("tr")
    try:
        return spacy.load(model)
    except (OSError, ValueError, KeyError) as exc:  # not a pipeline, or a broken one
        raise _bad(f"cannot load spaCy pipeline {model!r} (pii.presidio_model): {exc}") from exc


def _analyzer(nlp: Any, model: str | None, entities: list[str]) -> Any:
    """An ``AnalyzerEngine`` over the already-loaded pipeline, with the NER recognizer only."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    language = str(nlp.lang)
    engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": model or "blank"}])
    # Loaded by us: Presidio's own load() would try to download a pipeline it cannot find.
    engine.nlp = {language: nlp}  # type: ignore[assignment]
    registry = RecognizerRegistry(supported_languages=[language])
    registry.add_recognizer(
        SpacyRecognizer(supported_language=language, supported_entities=entities)
    )
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])


def shared(model: str | None, entities: Sequence[str]) -> NerRecognizer:
    """One loaded recognizer per (pipeline, its config's mtime, entities) for the process:
    every tenant override builds its own guard, and a spaCy pipeline is tens of MB."""
    ensure_available(model)
    config = Path(model) / "config.cfg" if model is not None else None
    stamp = config.stat().st_mtime if config is not None and config.is_file() else 0.0
    where = str(Path(model).resolve()) if model is not None and Path(model).is_dir() else model
    key = (where or "", stamp, tuple(entities))
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:  # new, retrained (new mtime), or released by its last guard
            found = _SHARED[key] = NerRecognizer(model, entities)
        return found
