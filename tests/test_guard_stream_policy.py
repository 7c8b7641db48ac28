"""Streaming masking across chunk boundaries, policy actions, and the non-PII checks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from paramstack.errors import GuardBlocked, InvalidInput
from paramstack.guard.checks import CHECKS, GuardResources
from paramstack.guard.copyright import ProtectedCorpus
from paramstack.guard.engine import Guard
from paramstack.guard.findings import Decision
from paramstack.guard.pii import MaskSession
from paramstack.guard.policy import Policy

ANSWER = (
    "Kaydınız tamam. TCKN 10000000146, cep 0532 123 45 67, IBAN TR33 0006 1005 1978 6457 "
    "8413 26 ve e-posta ayse.kaya@example.com. Doğum tarihi: 12.03.1985. Card 4111 1111 "
    "1111 1111 was charged. "
) * 3

# Guards in tests never read a model or corpus from the working directory.
NO_FILES = GuardResources(home=Path("/nonexistent"))


def _stream(guard: Guard, text: str, seed: int, **kw: object) -> str:
    rng = random.Random(seed)
    stream = guard.stream_output(**kw)  # type: ignore[arg-type]
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 12)
        out.append(stream.feed(text[i : i + n]))
        i += n
    out.append(stream.finish())
    return "".join(out)


def test_stream_masks_like_whole_text() -> None:
    guard = Guard(Policy(), NO_FILES)
    expected = guard.check_output(ANSWER, domain="medical").text
    assert "10000000146" not in expected and "[IBAN]" in expected and "[CARD]" in expected
    for seed in range(15):
        assert _stream(guard, ANSWER, seed, domain="medical") == expected


def test_stream_never_releases_a_partial_identifier() -> None:
    guard = Guard(Policy(), NO_FILES)
    stream = guard.stream_output()
    released = ""
    for char in "Numaram 0532 123 45 67 ve bitti." + " " * 80:
        released += stream.feed(char)
        assert "0532" not in released and "123 45" not in released
    assert "[PHONE]" in released + stream.finish()


def test_stream_restores_session_placeholders() -> None:
    guard = Guard(Policy(), NO_FILES)
    session = MaskSession()
    guard.check_input("mail ali@example.com", session=session)
    text = "Tamam, [EMAIL_1] adresine yazdım. " * 5
    assert _stream(guard, text, 3, session=session) == text.replace("[EMAIL_1]", "ali@example.com")


def test_policy_actions_and_overrides() -> None:
    base = Policy.from_yaml()
    assert base.version == "default-1" and set(CHECKS) >= {"pii", "injection", "toxicity"}
    blocking = base.with_overrides({"pii": {"input": "block"}}, tenant="acme")
    assert blocking.version.startswith("default-1+acme.")
    with pytest.raises(GuardBlocked) as err:
        Guard(blocking, NO_FILES).check_input("my mail is x@example.com")
    assert err.value.rule == "pii.email" and "x@example.com" not in err.value.message
    warn = Guard(base.with_overrides({"pii": {"input": "warn"}}), NO_FILES)
    result = warn.check_input("mail x@example.com")
    assert result.decision is Decision.WARN and result.text == "mail x@example.com"
    assert result.warnings == ["pii.email"]
    with pytest.raises(InvalidInput):
        Guard(base.with_overrides({"injection": {"input": "mask"}}))
    with pytest.raises(InvalidInput):
        Policy.from_dict({"pii": {"inptu": "mask"}})


def test_toxicity_copyright_disclaimers() -> None:
    corpus = ProtectedCorpus(n=6)
    work = (
        "Bir varmış bir yokmuş, evvel zaman içinde kalbur saman içinde, develer tellal "
        "iken pireler berber iken, ben annemin beşiğini tıngır mıngır sallar iken. "
    ) * 2
    corpus.add("masal", work)
    guard = Guard(Policy(), GuardResources(home=Path("/nonexistent"), protected=corpus))
    result = guard.check_output("Sen tam bir GERİZEKALI ve aptalsın.")
    assert result.decision is Decision.WARN and "toxicity.lexicon" in result.warnings
    assert guard.check_output("Have a lovely day, pictures attached.").decision is Decision.ALLOW
    with pytest.raises(GuardBlocked) as err:
        guard.check_output("Tabii: " + work.upper())
    assert err.value.rule == "copyright.ngram_overlap"
    assert guard.check_output("Masal şöyle başlar: bir varmış bir yokmuş.").decision is (
        Decision.ALLOW
    )
    legal = guard.check_output("You can terminate the lease with notice.", domain="legal")
    assert legal.text.endswith("not legal advice; consult a licensed lawyer about your situation.")
    tr = guard.check_output(
        "Bu ilaç için doktorunuza danışın ve dozu değiştirmeyin.", domain="medical"
    )
    assert "tıbbi tavsiye değildir" in tr.text
    assert guard.check_output("ok", domain="retail").disclaimer is None
