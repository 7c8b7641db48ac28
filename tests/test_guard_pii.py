"""PII: every identifier type valid and with a bad checksum, inside Turkish and English text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from faker import Faker
from stdnum import luhn
from stdnum.tr import tckimlik, vkn

from paramstack.guard.checks import GuardResources
from paramstack.guard.engine import Guard
from paramstack.guard.pii import MaskSession, PatternRecognizer, detect
from paramstack.guard.policy import Policy
from paramstack.guard.textnorm import fold, turkish_lower

# Guards in tests never read a model or corpus from the working directory.
NO_FILES = GuardResources(home=Path("/nonexistent"))


def _flip_last_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def _vkn(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(9))
    return body + vkn.calc_check_digit(body)


@pytest.fixture(scope="module")
def fake() -> Faker:
    f = Faker("tr_TR")
    f.seed_instance(6)
    return f


def entities(text: str) -> list[tuple[str, str]]:
    return [(s.entity, text[s.start : s.end]) for s in detect(text, [PatternRecognizer()])]


def test_tckn_valid_masked_invalid_kept(fake: Faker) -> None:
    for _ in range(25):
        good = fake.ssn()
        assert tckimlik.is_valid(good)
        bad = _flip_last_digit(good)
        assert entities(f"Hastanın T.C. kimlik numarası {good} olarak kaydedildi.") == [
            ("TCKN", good)
        ]
        assert entities(f"My national id is {bad}, please check it.") == []


def test_vkn_valid_masked_invalid_kept() -> None:
    rng = random.Random(1)
    for _ in range(25):
        good = _vkn(rng)
        bad = _flip_last_digit(good)
        assert entities(f"Şirketin vergi numarası (VKN) {good} dir.") == [("VKN", good)]
        assert entities(f"Firma VKN: {bad}.") == []


def test_iban_card_valid_and_invalid(fake: Faker) -> None:
    for _ in range(20):
        iban = fake.iban()
        spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        assert entities(f"Ödemeyi {spaced} hesabına yapın.") == [("IBAN", spaced)]
        bad = iban[:-1] + str((int(iban[-1]) + 1) % 10)
        assert [e for e, _ in entities(f"IBAN {bad} geçersiz.")] != ["IBAN"]
        card = fake.credit_card_number()
        assert entities(f"Pay with card {card} today") == [("CARD", card)]
        assert luhn.is_valid(card)
        assert entities(f"Pay with card {_flip_last_digit(card)} today") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Beni 0532 123 45 67 numarasından arayın.", "0532 123 45 67"),
        ("Cep: +90 532 123 4567, akşam ara.", "+90 532 123 4567"),
        ("Ofis (0212) 555 12 34 numaralı hattır.", "(0212) 555 12 34"),
        ("WhatsApp 05551234567 üzerinden yaz.", "05551234567"),
        ("cep: 5321234567", "5321234567"),
        ("Call our London office at +44 20 7946 0958 today.", "+44 20 7946 0958"),
        ("US support: (415) 555-2671.", "(415) 555-2671"),
    ],
)
def test_phone_formats(text: str, value: str) -> None:
    assert entities(text) == [("PHONE", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Sipariş numaranız 2024113055 olarak oluşturuldu ve 3 iş gününde kargoda.",
        "Toplam tutar 1.234.567,89 TL; fatura no 88412.",
        "Version 12.5.3 was released at 12:30:45 on build 20241130.",
        "Kod 0000000000 ve 1111111111 geçersizdir.",
    ],
)
def test_plain_numbers_are_not_pii(text: str) -> None:
    assert [e for e, _ in entities(text) if e in {"PHONE", "TCKN", "CARD", "SSN"}] == []


def test_email_ssn_ip_dob() -> None:
    text = (
        "Yazışma için ayşe.yılmaz@örnek.com.tr ya da bob@example.org; SSN 123-45-6789; "
        "sunucu 192.168.10.4 ve 2001:db8::8a2e:370:7334. Doğum tarihi: 12.03.1985. "
        "He was born on March 4, 1990. The quarterly review meeting is on 12.03.2025."
    )
    found = entities(text)
    assert ("EMAIL", "ayşe.yılmaz@örnek.com.tr") in found
    assert ("EMAIL", "bob@example.org") in found
    assert ("SSN", "123-45-6789") in found
    assert ("IP", "192.168.10.4") in found
    assert ("IP", "2001:db8::8a2e:370:7334") in found
    assert ("DOB", "12.03.1985") in found
    assert ("DOB", "March 4, 1990") in found
    assert all(v != "12.03.2025" for _, v in found)  # a date without a birth word stays
    assert entities("SSN 000-12-3456 and 999.1.1.1") == []


def test_turkish_case_folding() -> None:
    assert turkish_lower("İSTANBUL ILGAZ") == "istanbul ılgaz"
    assert fold("DOĞUM TARİHİ") == "dogum tarihi"
    assert len(fold("İİİ ıI")) == len("İİİ ıI")
    assert entities("DOĞUM TARİHİ: 01.02.1990")[0][0] == "DOB"


def test_guard_masks_typed_and_reversible(fake: Faker) -> None:
    guard = Guard(Policy(), NO_FILES)
    tckn, email = fake.ssn(), "deniz@example.com"
    result = guard.check_input(f"TCKN {tckn}, e-posta {email}, tekrar {email}")
    assert result.text == "TCKN [TCKN], e-posta [EMAIL], tekrar [EMAIL]"
    assert tckn not in str(result.summary()) and tckn not in repr(result.findings)
    session = MaskSession()
    masked = guard.check_input(f"Write to {email} and a@b.co", session=session)
    assert masked.text == "Write to [EMAIL_1] and [EMAIL_2]"
    answer = guard.check_output("Sent to [EMAIL_1]; cc new@x.org", session=session)
    assert answer.text == f"Sent to {email}; cc [EMAIL]"
    assert MaskSession().restore("Sent to [EMAIL_1]") == "Sent to [EMAIL_1]"


def test_dob_word_after_the_date_and_no_future_births() -> None:
    text = "Başvuru formunda 08.05.1964 yazıyor; doğum tarihi doğru mu?"
    assert entities(text) == [("DOB", "08.05.1964")]
    assert entities("Doğum tarihi 01.01.2999 olarak girilmiş.") == []  # not a birth date
    assert entities("The review is on 12.03.2020. Date of birth is required.") == []


def test_second_pii_set_is_independent_and_labelled() -> None:
    from paramstack.guard.evaluate import pii_examples
    from paramstack.guard.pii_evalset import pii_examples_v2

    rows = pii_examples_v2()
    assert not {t for t, _ in rows} & {t for t, _ in pii_examples()}
    assert all(value in text for text, gold in rows for _, value in gold)
    assert sum(1 for _, gold in rows if not gold) >= 100  # look-alikes and number noise


def test_third_pii_set_changes_contexts_and_its_look_alikes_fail_their_checksums() -> None:
    from stdnum import iban, luhn
    from stdnum.tr import tckimlik

    from paramstack.guard.pii_evalset import pii_examples_v2
    from paramstack.guard.pii_evalset_v3 import pii_examples_v3

    rows = pii_examples_v3()
    assert not {t for t, _ in rows} & {t for t, _ in pii_examples_v2()}
    assert all(value in text for text, gold in rows for _, value in gold)
    assert sum(1 for _, gold in rows if len(gold) >= 2) >= 200  # two or more ids per text
    negatives = [text for text, gold in rows if not gold]
    assert len(negatives) == 80
    for text in negatives:
        token = text.split()[2].rstrip(",")
        if text.startswith("Hatalı IBAN"):
            assert not iban.is_valid(text.split()[-1])
        elif text.startswith("Reddedilen"):
            assert not luhn.is_valid(token)
        elif text.startswith("Dosya"):
            assert not tckimlik.is_valid(token)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the tail of a bad-checksum card is not an international phone number
        ("kredi kartı kısmına 2456 0041 7492 9398 yazdım", set()),
        # a dotted IPv4 is an address even when it parses as a Turkish number (area 216)
        ("Form submitted with IP address 216.247.69.89.", {("IP", "216.247.69.89")}),
        ("Tel: 0532 123 45 67", {("PHONE", "0532 123 45 67")}),
        ("call +49 30 1234 5678 now", {("PHONE", "+49 30 1234 5678")}),
    ],
)
def test_phone_does_not_swallow_cards_or_addresses(
    text: str, expected: set[tuple[str, str]]
) -> None:
    found = {(s.entity, text[s.start : s.end]) for s in detect(text, [PatternRecognizer()])}
    assert found == expected
