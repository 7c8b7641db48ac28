"""The query-complexity classifier: band edges, each feature, Turkish folding, the shipped YAML."""

# ruff: noqa: RUF001  (Turkish text: the dotless i is the point)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paramstack.errors import InvalidInput
from paramstack.gateway.complexity import ComplexityClassifier, ComplexityConfig

ZERO = {"weight": 0, "full": 1}
FEATURES = ("words", "domain_terms", "analysis_terms", "questions", "messages", "context_tokens")
LEGAL_TR = (
    "Müvekkilim ile kiracı arasındaki kira sözleşmesinin feshi konusunda Türk Borçlar Kanunu "
    "madde 347 ve 350 hükümlerini karşılaştırarak DEĞERLENDİRİNİZ. Kiracının tahliye "
    "taahhütnamesi geçersiz sayılırsa davacı olarak hangi tazminat taleplerinde bulunabiliriz? "
    "Yargıtay içtihatlarına göre ihtarname süresi nasıl hesaplanır ve mahkeme hangi delilleri "
    "esas alır? Ayrıca icra takibi ile dava yolunun avantaj ve dezavantajlarını adım adım "
    "analiz ediniz."
)


def only(feature: str, full: float, **terms: list[str]) -> ComplexityClassifier:
    """A classifier where one feature carries all 100 points (thresholds 30 and 60)."""
    raw: dict[str, Any] = {name: ZERO for name in FEATURES}
    raw[feature] = {"weight": 100, "full": full}
    raw["thresholds"] = {"medium": 30, "complex": 60}
    raw["terms"] = terms
    return ComplexityClassifier(ComplexityConfig.model_validate(raw))


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("words", "band"),
    [
        (0, "simple"),
        (29, "simple"),
        (30, "medium"),
        (59, "medium"),
        (60, "complex"),
        (500, "complex"),
    ],
)
def test_band_edges_are_inclusive_at_the_thresholds(words: int, band: str) -> None:
    result = only("words", 100).classify(user(" ".join(["w"] * words)))
    assert result.score == min(words, 100)
    assert result.band == band


def test_each_feature_counts_what_it_says() -> None:
    assert only("questions", 4).classify(user("a? b? c")).score == 50
    assert (
        only("messages", 4)
        .classify([*user("a"), {"role": "assistant", "content": "b"}, *user("c")])
        .score
        == 50
    )
    # 400 characters over two messages (system text counts for context, not for words)
    context = [{"role": "system", "content": "x" * 200}, *user("y" * 200)]
    assert only("context_tokens", 200).classify(context).score == 50
    assert only("words", 10).classify(context).score == 10  # one word, the user's
    medical = only("domain_terms", 4, medical=["teşhis", "symptom"], legal=["dava"])
    found = medical.classify(user("Teşhis? SYMPTOMS and a dava, davacı"))
    assert found.features["medical_terms"] == 2 and found.features["legal_terms"] == 2
    assert found.score == 100


def test_terms_match_turkish_stems_in_any_case_at_word_starts_only() -> None:
    analysis = only("analysis_terms", 4, analysis=["karşılaştır", "incele", "risk"])
    for text, hits in [
        ("KARŞILAŞTIRINIZ", 1),  # dotless I, cedillas, upper case, a suffix
        ("karsilastirmak", 1),  # typed without Turkish letters
        ("İNCELEYİNİZ ve inceleme", 2),  # dotted capital İ
        ("asterisk, brisk", 0),  # "risk" inside a word is not the stem
        ("Risks, riskli", 2),
    ]:
        assert analysis.features(user(text))["analysis_terms"] == hits, text
    assert analysis.classify(user("Karşılaştır")).score == 25


def test_the_shipped_config_separates_a_greeting_from_a_legal_analysis() -> None:
    classifier = ComplexityClassifier(ComplexityConfig.from_yaml())
    greeting = classifier.classify(user("Merhaba, nasılsın?"))
    assert greeting.band == "simple" and greeting.score < 10
    legal = classifier.classify(
        [{"role": "system", "content": "Hukuk asistanısın."}, *user(LEGAL_TR)]
    )
    assert legal.band == "complex"
    assert legal.features["legal_terms"] >= 8 and legal.features["analysis_terms"] >= 3
    medical = classifier.classify(
        user("What are the side effects of metformin for a diabetes patient, and the dosage?")
    )
    assert medical.band == "medium" and medical.features["medical_terms"] >= 3


def test_bad_configs_are_refused_with_the_reason(tmp_path: Path) -> None:
    raw: dict[str, Any] = {name: {"weight": 10, "full": 1} for name in FEATURES}
    raw["thresholds"] = {"medium": 30, "complex": 60}
    with pytest.raises(ValueError, match="sum to 100"):
        ComplexityConfig.model_validate(raw)
    raw["words"] = {"weight": 50, "full": 1}
    raw["thresholds"] = {"medium": 60, "complex": 30}
    with pytest.raises(ValueError, match=r"below thresholds\.complex"):
        ComplexityConfig.model_validate(raw)
    bad = tmp_path / "c.yaml"
    bad.write_text("thresholds: {medium: 1}\n")
    with pytest.raises(InvalidInput, match="cannot read the complexity config") as err:
        ComplexityConfig.from_yaml(bad)
    assert err.value.code == "bad_config"
