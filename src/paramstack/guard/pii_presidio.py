"""Presidio behind our :class:`~paramstack.guard.pii.Recognizer` protocol, both ways round.

* :class:`PresidioRecognizer` runs Presidio's own analyzer with every Turkish-relevant pattern
  recognizer switched on (``TrNationalIdRecognizer`` included), so ``guard eval`` can put its
  figures and latency beside our fast path. Offline, a blank spaCy pipeline is saved to disk
  and used: patterns only, no NER. (Serving names and places is :mod:`~paramstack.guard.pii_ner`,
  ``pii.presidio`` in the policy: Presidio's NER alone, next to our finders.)
* :func:`paramstack_recognizers` wraps our checksum finders as Presidio recognizers, for teams
  that already run Presidio: it has no recognizer for the Turkish tax id (VKN) at all, and its
  phone matcher takes any 10-11 digit run; ours validate checksums.

Presidio and spaCy are an optional extra (``pip install paramstack[presidio]``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paramstack.guard.pii_patterns import FINDERS, Span
from paramstack.guard.pii_starts import Starts
from paramstack.guard.textnorm import fold

# Presidio entity -> ours. DATE_TIME is any date, so as DOB it is measured generously.
ENTITY_MAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "TR_NATIONAL_ID": "TCKN",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "DATE_TIME": "DOB",
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
}
PHONE_REGIONS = ("TR", "US", "GB", "DE", "FR", "NL")


def _offline_tldextract() -> None:
    """Presidio's e-mail check calls ``tldextract.extract``, which fetches the public suffix
    list over the network on first use; use the snapshot bundled with tldextract instead."""
    import tldextract
    import tldextract.tldextract as impl

    impl.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())


def _pattern_recognizers(language: str) -> list[Any]:
    from presidio_analyzer import predefined_recognizers as pr

    plain = (
        pr.EmailRecognizer,
        pr.CreditCardRecognizer,
        pr.IbanRecognizer,
        pr.IpRecognizer,
        pr.UsSsnRecognizer,
        pr.DateRecognizer,
        pr.TrNationalIdRecognizer,
    )
    recognizers: list[Any] = [cls(supported_language=language) for cls in plain]
    recognizers.append(
        pr.PhoneRecognizer(supported_language=language, supported_regions=PHONE_REGIONS)
    )
    return recognizers


class PresidioRecognizer:
    """Presidio's analyzer as one of our recognizers (spans mapped to our entity names)."""

    def __init__(
        self,
        *,
        language: str = "tr",
        spacy_model: str | Path | None = None,
        extra: Sequence[Any] = (),
        score_threshold: float = 0.0,
    ) -> None:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        _offline_tldextract()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if spacy_model is None:  # offline: a blank pipeline (tokeniser only, no NER)
            self._tmp = tempfile.TemporaryDirectory(prefix="paramstack-spacy-")
            spacy_model = Path(self._tmp.name) / language
            spacy.blank(language).to_disk(spacy_model)
        nlp = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": language, "model_name": str(spacy_model)}],
            }
        ).create_engine()
        registry = RecognizerRegistry(supported_languages=[language])
        for recognizer in [*_pattern_recognizers(language), *extra]:
            registry.add_recognizer(recognizer)
        if nlp.get_supported_entities():  # a real NER model: names and places too
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            registry.add_recognizer(SpacyRecognizer(supported_language=language))
        self.language = language
        self.score_threshold = score_threshold
        self._engine = AnalyzerEngine(
            registry=registry, nlp_engine=nlp, supported_languages=[language]
        )
        self.entities = tuple(dict.fromkeys(ENTITY_MAP.values()))

    def analyze(self, text: str) -> list[Span]:
        results = self._engine.analyze(
            text, language=self.language, score_threshold=self.score_threshold
        )
        return [
            Span(
                r.start,
                r.end,
                ENTITY_MAP.get(r.entity_type, r.entity_type),
                "presidio",
                float(r.score),
            )
            for r in results
        ]


def paramstack_recognizers(
    entities: Sequence[str] = ("VKN", "PHONE", "TCKN", "IBAN"), language: str = "tr"
) -> list[Any]:
    """Our checksum-validated finders as Presidio ``EntityRecognizer`` s (entity names are
    ours, e.g. ``VKN``), to add to an existing Presidio ``RecognizerRegistry``."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class _Finder(EntityRecognizer):
        def __init__(self, entity: str) -> None:
            self._finder = FINDERS[entity]
            super().__init__(
                supported_entities=[entity],
                name=f"paramstack_{entity.lower()}",
                supported_language=language,
            )

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [
                RecognizerResult(s.entity, s.start, s.end, s.score)
                for s in self._finder(text, fold(text), Starts(text))
            ]

    return [_Finder(entity) for entity in entities]
