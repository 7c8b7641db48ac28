"""A real, tiny spaCy NER model trained offline for the Presidio backend's tests.

A blank Turkish pipeline plus ``ner``, trained for a few seconds (fixed seed) on hand-written
Turkish and English sentences with ``PERSON`` / ``LOC`` spans, saved to a temporary directory
once per test session. Its infixes split Turkish suffixes after an apostrophe (``Ayşe'ye`` →
``Ayşe`` ``'`` ``ye``), as a real Turkish pipeline would, so a name's mask keeps its suffix.
The model is small: tests use the names it was trained on, in sentences it has not seen.
"""

# ruff: noqa: RUF001  (Turkish text: the dotless i is the point)

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest

PEOPLE = (
    "Ayşe Yılmaz",
    "Mehmet Demir",
    "Elif Kaya",
    "Mustafa Çelik",
    "Zeynep Şahin",
    "Ahmet Öztürk",
    "John Smith",
    "Mary Johnson",
    "Emma Brown",
    "David Miller",
)
PLACES = ("İstanbul", "Ankara", "İzmir", "Bursa", "Kadıköy", "London", "Boston", "Manchester")
TEMPLATES = (
    "Merhaba, ben {p}, {l} şubesinden yazıyorum.",
    "Sayın {p} bugün {l} ofisine geldi.",
    "Hastamız {p} {l} hastanesinde yatıyor.",
    "{p} ile yarın {l} merkezde buluşacağız.",
    "Dosyayı {p} imzaladı ve {l} adresine gönderdi.",
    "Lütfen {p} için {l} randevusu oluşturun.",
    "{p} geçen hafta {l} şehrine taşındı.",
    "Müşteri {p} siparişini {l} deposundan aldı.",
    "Hello, my name is {p} and I live in {l}.",
    "Please send the report to {p} at the {l} office.",
    "{p} moved to {l} last year.",
    "Our patient {p} was admitted in {l} yesterday.",
    "Call {p} before the meeting in {l}.",
    "The contract was signed by {p} in {l}.",
)
PLAIN = (
    "Siparişim hakkında bilgi almak istiyorum.",
    "Toplantı yarın saat onda başlayacak.",
    "Raporu en kısa sürede gönderin lütfen.",
    "E-posta adresimi ve telefonumu formda bulabilirsiniz.",
    "Sipariş numarası ve TC kimlik numarası ektedir.",
    "Tamam, yarın görüşürüz.",
    "Sipariş 12345678901 kargoya verildi.",
    "Order 98765432101 has shipped.",
    "The weather is nice today.",
    "Please summarise the attached document.",
    "Thank you for your quick answer.",
)


def _examples() -> list[tuple[str, list[tuple[int, int, str]]]]:
    rows: list[tuple[str, list[tuple[int, int, str]]]] = []
    for i, template in enumerate(TEMPLATES):
        for j in range(4):
            person = PEOPLE[(i + 3 * j) % len(PEOPLE)]
            place = PLACES[(2 * i + j) % len(PLACES)]
            text = template.format(p=person, l=place)
            p, lo = text.index(person), text.index(place)
            rows.append((text, [(p, p + len(person), "PERSON"), (lo, lo + len(place), "LOC")]))
    rows.extend((text, []) for text in PLAIN)
    return rows


def train_tiny_ner(dest: Path, seed: int = 0, epochs: int = 25) -> Path:
    """Train the blank-``tr`` + ``ner`` pipeline and save it to ``dest`` (returned)."""
    import spacy
    from spacy.training import Example
    from spacy.util import compile_infix_regex, fix_random_seed, minibatch

    fix_random_seed(seed)
    nlp = spacy.blank("tr")
    infixes = [*nlp.Defaults.infixes, r"(?<=[A-Za-zÇĞİÖŞÜçğıöşü])'(?=[a-zçğıöşü])"]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in _examples()]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=8):
            nlp.update(batch, sgd=optimizer, drop=0.1)
    nlp.to_disk(dest)
    return dest


@functools.cache
def _trained(base: Path) -> Path:
    return train_tiny_ner(base / "tiny-ner")


@pytest.fixture(scope="session")
def ner_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained pipeline's directory (trained once per session, shared by modules)."""
    return _trained(tmp_path_factory.getbasetemp())
