"""The built-in checks, each registered by name with ``@check``; the engine looks them up.

A check turns a text into findings and declares which actions make sense for it (masking an
injection attempt would pass the rest of the attack through, so injection allows only block,
warn and log). Everything expensive (models, lexicons, corpora) is loaded in ``__init__``, once
per :class:`~paramstack.guard.engine.Guard`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from paramstack.errors import InvalidInput
from paramstack.guard.copyright import ProtectedCorpus
from paramstack.guard.findings import Finding
from paramstack.guard.injection import InjectionDetector
from paramstack.guard.injection_model import InjectionModel, IntArray, features, load_shared
from paramstack.guard.pii import PatternRecognizer, Recognizer, detect
from paramstack.guard.policy import Action, Policy
from paramstack.guard.textnorm import deobfuscate, fold
from paramstack.guard.toxicity import ToxicityLexicon


class TextView:
    """A text plus its folded form, computed once and shared by all checks.

    Plain lazy slots rather than ``functools.cached_property``: on Python 3.11 that takes a
    lock on every access, and the gateway builds two views per chat request."""

    __slots__ = ("_deobfuscated", "_folded", "_ids", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded: str | None = None
        self._deobfuscated: str | None = None
        self._ids: dict[tuple[tuple[int, ...], int, tuple[int, ...]], IntArray] = {}

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = fold(self.text)
        return self._folded

    @property
    def deobfuscated(self) -> str:
        """The injection view (:func:`deobfuscate`), shared by its patterns and n-grams."""
        if self._deobfuscated is None:
            self._deobfuscated = deobfuscate(self.text)
        return self._deobfuscated

    def ngram_ids(self, model: InjectionModel) -> IntArray:
        """The model's n-gram features of the text, computed once for every classifier with
        the same settings (the injection and toxicity models share them)."""
        key = (model.orders, model.bits, model.word_orders)
        if key not in self._ids:
            self._ids[key] = features(self.text, *key, norm=self.deobfuscated)
        return self._ids[key]


class DocumentView(TextView):
    """A text that is a document (tool output, retrieved context), not the caller's words:
    the injection check judges it as data (:meth:`InjectionDetector.detect_data`)."""

    __slots__ = ()


@dataclass(frozen=True)
class GuardResources:
    """Where checks find their files; objects given here win over files (tests, the gateway)."""

    home: Path = Path("var")
    injection_model: InjectionModel | None = None
    protected: ProtectedCorpus | None = None

    @property
    def guard_dir(self) -> Path:
        return self.home / "guard"


class Check(Protocol):
    name: str
    allowed: frozenset[Action]
    whole_text: bool  # True: needs the complete output (not run per streamed window)

    def scan(self, view: TextView) -> list[Finding]: ...


CheckFactory = Callable[[Policy, GuardResources], Check]
CHECKS: dict[str, CheckFactory] = {}
_ALL = frozenset(Action)
_NO_MASK = frozenset({Action.BLOCK, Action.WARN, Action.LOG, Action.OFF})


def check(name: str) -> Callable[[CheckFactory], CheckFactory]:
    """Register a check factory under ``name`` (the policy's key for it)."""

    def register(factory: CheckFactory) -> CheckFactory:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = factory
        return factory

    return register


def get_check(name: str) -> CheckFactory:
    try:
        return CHECKS[name]
    except KeyError:
        raise InvalidInput(f"unknown check {name!r}; valid: {sorted(CHECKS)}") from None


@check("pii")
class PiiCheck:
    name = "pii"
    allowed = _ALL
    whole_text = False

    def __init__(self, policy: Policy, resources: GuardResources) -> None:
        cfg = policy.pii
        self.recognizers: list[Recognizer] = [PatternRecognizer(cfg.entities)]
        # Streams are rescanned as they grow; an NER costs milliseconds per call, so with one
        # a stream is scanned every 64 new characters rather than at every chunk, and the
        # gateway runs the guard in a worker thread (``offload``) so as not to stall its loop.
        self.stream_step = 0
        self.offload = cfg.presidio
        if cfg.presidio:  # loaded here, once per guard (shared by tenant guards)
            from paramstack.guard.pii_ner import shared

            self.recognizers.append(shared(cfg.presidio_model, cfg.presidio_entities))
            self.stream_step = 64

    def scan(self, view: TextView) -> list[Finding]:
        return [
            Finding("pii", s.entity, s.rule, s.start, s.end, s.score)
            for s in detect(view.text, self.recognizers)
        ]


@check("injection")
class InjectionCheck:
    name = "injection"
    allowed = _NO_MASK
    whole_text = False

    def __init__(self, policy: Policy, resources: GuardResources) -> None:
        model = resources.injection_model
        path = policy.injection.model_path or resources.guard_dir / "injection_model.npz"
        if model is None and policy.injection.classifier and path.is_file():
            model = load_shared(path)
        data_path = path.with_name(f"{path.stem}.data.npz")
        data_model = None
        if policy.injection.classifier and data_path.is_file():
            data_model = load_shared(data_path)
        self.detector = InjectionDetector(
            model if policy.injection.classifier else None,
            policy.injection.threshold,
            data_model,
            channels=policy.injection.channels,
        )

    def scan(self, view: TextView) -> list[Finding]:
        model = self.detector.model
        if isinstance(view, DocumentView):
            hit = self.detector.detect_data(view.text)
        else:
            hit = self.detector.detect(view.text, _lazy_ids(view, model), view.deobfuscated)
        if hit is None:
            return []
        return [Finding("injection", "INJECTION", hit.rule, 0, len(view.text), hit.score)]


def _lazy_ids(view: TextView, model: InjectionModel | None) -> Callable[[], IntArray] | None:
    """The view's n-grams for ``model``, computed only if the detector scores the whole text."""
    if model is None:
        return None
    found = model

    def ids() -> IntArray:
        return view.ngram_ids(found)

    return ids


@check("toxicity")
class ToxicityCheck:
    name = "toxicity"
    allowed = _ALL
    whole_text = False

    def __init__(self, policy: Policy, resources: GuardResources) -> None:
        cfg = policy.toxicity
        self.lexicon = ToxicityLexicon.load(cfg.lexicon_paths)
        self.threshold = cfg.threshold
        self.model: InjectionModel | None = None
        self.model_threshold = cfg.classifier_threshold
        if cfg.classifier:
            path = cfg.model_path or resources.guard_dir / "toxicity_model.npz"
            if not path.is_file():
                raise InvalidInput(
                    f"toxicity.classifier is on but {path} does not exist; "
                    "run `paramstack guard train-toxicity` or set toxicity.classifier: false",
                    code="bad_policy",
                )
            self.model = load_shared(path)

    def scan(self, view: TextView) -> list[Finding]:
        """Lexicon hits (spans of the terms) when their score reaches the threshold, and a
        whole-text finding when the classifier's score reaches its own."""
        hits = self.lexicon.scan(view.folded)
        score = ToxicityLexicon.score(hits)
        found = []
        if score >= self.threshold:
            found = [
                Finding("toxicity", "TOXIC", "toxicity.lexicon", h.start, h.end, score)
                for h in hits
            ]
        if self.model is not None:
            prob = self.model.score_ids(view.ngram_ids(self.model))
            limit = self.model_threshold
            if prob >= (limit if limit is not None else self.model.threshold_for(view.text)):
                found.append(
                    Finding("toxicity", "TOXIC", "toxicity.classifier", 0, len(view.text), prob)
                )
        return found


@check("copyright")
class CopyrightCheck:
    name = "copyright"
    allowed = _NO_MASK
    whole_text = True

    def __init__(self, policy: Policy, resources: GuardResources) -> None:
        cfg = policy.copyright
        self.corpus = resources.protected or ProtectedCorpus.from_dir(
            cfg.corpus_dir or resources.guard_dir / "protected", cfg.ngram
        )
        self.threshold = cfg.threshold
        self.min_shingles = cfg.min_shingles

    def scan(self, view: TextView) -> list[Finding]:
        hit = self.corpus.match(view.text, self.min_shingles)
        if hit is None or hit.overlap < self.threshold:
            return []
        return [
            Finding(
                "copyright",
                "PROTECTED_WORK",
                "copyright.ngram_overlap",
                0,
                len(view.text),
                hit.overlap,
            )
        ]
