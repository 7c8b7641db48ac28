"""Presidio beside our fast path: its analyzer behind our recognizer protocol (offline, blank
spaCy pipeline), our checksum finders inside a Presidio registry, and the side-by-side figures
in ``guard eval`` showing what the issue measured (no VKN, look-alike phones)."""

from __future__ import annotations

from stdnum.tr import vkn

from paramstack.guard.evaluate import pii_examples, pii_metrics
from paramstack.guard.pii import PatternRecognizer, detect
from paramstack.guard.pii_presidio import PresidioRecognizer, paramstack_recognizers

TEXT = "Hasta TCKN 10000000146, e-posta ayse@example.com, kart 4111 1111 1111 1111."


def test_presidio_recognizer_maps_entities_to_ours() -> None:
    found = {(s.entity, TEXT[s.start : s.end]) for s in detect(TEXT, [PresidioRecognizer()])}
    assert ("TCKN", "10000000146") in found
    assert ("EMAIL", "ayse@example.com") in found
    assert ("CARD", "4111 1111 1111 1111") in found


def test_our_finders_fill_presidios_gaps_inside_presidio() -> None:
    body = "123456789"
    valid = body + vkn.calc_check_digit(body)
    bad = body + str((int(vkn.calc_check_digit(body)) + 1) % 10)
    text = f"Firma VKN {valid}; eski kayıt {bad}."
    plain = PresidioRecognizer()
    assert not [
        s for s in plain.analyze(text) if text[s.start : s.end] == valid and s.entity == "VKN"
    ]
    extended = PresidioRecognizer(extra=paramstack_recognizers(["VKN"]))
    spans = {(s.entity, text[s.start : s.end]) for s in extended.analyze(text)}
    assert ("VKN", valid) in spans
    assert ("VKN", bad) not in spans  # checksum-validated: the look-alike stays


def test_fast_path_beats_presidio_on_the_labelled_set() -> None:
    rows = pii_examples(n_per_type=15, seed=3)
    ours = pii_metrics([PatternRecognizer()], rows)
    theirs = pii_metrics([PresidioRecognizer()], rows)
    assert theirs["VKN"]["recall"] == 0.0  # Presidio has no VKN recognizer
    assert ours["VKN"]["recall"] == 1.0
    assert theirs["PHONE"]["precision"] < ours["PHONE"]["precision"] == 1.0
    for entity in ("TCKN", "IBAN", "EMAIL"):
        assert ours[entity]["precision"] == ours[entity]["recall"] == 1.0
