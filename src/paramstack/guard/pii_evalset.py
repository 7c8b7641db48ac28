"""A second, independent PII evaluation set ("v2"): other seed, templates and value formats.

Why a second set: the first one (:func:`paramstack.guard.evaluate.pii_examples`) is the one
the recognizers were debugged against, so its figures are no longer an honest estimate. This
set was written *before* the later pattern changes and is never used to tune them: new Turkish
and English sentences (support tickets, forms, chat), identifiers written the way people write
them (spaced IBANs and cards, ``+90 (532)`` phones, ISO / month-name / slashed birth dates),
and look-alikes that must stay unmasked (bad check digits, meeting dates, order numbers,
versions, amounts). Gold spans are exact substrings, so scoring is the same code as set one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Row = tuple[str, list[tuple[str, str]]]
SEED = 20_261_124

_GENERIC = {
    "tr": [
        "Sayın yetkili, {label} kısmına {value} yazdım ama sistem kabul etmedi.",
        "Kargo teslim edilmedi. İletişim için {label}: {value} — teşekkürler.",
        "{label} {value} olan kaydı güncelleyebilir misiniz?",
        "Hasta dosyasına not: {label} = {value}; kontrol sonrası arşivlenecek.",
    ],
    "en": [
        "Hi team, the customer's {label} is {value} and the ticket is still open.",
        "Form submitted with {label} {value}. Please verify before Friday.",
        "For the audit log: {value} was entered as the {label}.",
    ],
}
_LABELS = {
    "tr": {
        "EMAIL": "e-posta adresi",
        "PHONE": "telefon",
        "TCKN": "T.C. kimlik no",
        "VKN": "vergi kimlik numarası",
        "IBAN": "IBAN",
        "CARD": "kredi kartı",
        "SSN": "SSN",
        "IP": "IP adresi",
    },
    "en": {
        "EMAIL": "email",
        "PHONE": "phone number",
        "TCKN": "Turkish ID number",
        "VKN": "tax number",
        "IBAN": "bank account (IBAN)",
        "CARD": "card number",
        "SSN": "social security number",
        "IP": "IP address",
    },
}
# Birth dates only count next to a birth word, so they get their own sentences.
_DOB_TEMPLATES = [
    "Ben {value} doğumluyum, emeklilik yaşımı hesaplar mısınız?",
    "Başvuranın doğum tarihi {value}, uyruğu T.C.",
    "Kızım {value} tarihinde doğdu; aşı takvimini gönderir misiniz?",
    "Patient DOB: {value}. Allergies: none known.",
    "She was born on {value} in Izmir.",
    "Date of birth {value} - please double-check the passport copy.",
]
_TR_MONTHS = [
    "Ocak",
    "Şubat",
    "Mart",
    "Nisan",
    "Mayıs",
    "Haziran",
    "Temmuz",
    "Ağustos",
    "Eylül",
    "Ekim",
    "Kasım",
    "Aralık",
]
_EN_MONTHS = "January February March April May June July August September October November December"


def _phone(rng: random.Random) -> str:
    area = rng.choice(["533", "507", "544", "552", "216", "224", "322", "462", "850"])
    a, b, c = rng.randint(200, 999), rng.randint(10, 99), rng.randint(10, 99)
    return rng.choice(
        [
            f"+90 ({area}) {a} {b} {c}",
            f"0 {area} {a} {b} {c}",
            f"0{area}-{a}-{b}-{c}",
            f"0{area}.{a}.{b}.{c}",
            f"+90-{area}-{a}-{b}{c}",
            f"0090 {area} {a} {b} {c}",
        ]
    )


def _dob(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2015), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{d:02d}/{m:02d}/{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{d} {_TR_MONTHS[m - 1]} {y}",
            f"{_EN_MONTHS.split()[m - 1]} {d}, {y}",
            f"{d}.{m}.{y}",
            f"{d:02d}-{m:02d}-{y}",
        ]
    )


def _spaced(value: str, every: int = 4) -> str:
    return " ".join(value[i : i + every] for i in range(0, len(value), every))


def _flip(value: str) -> str:
    """Change the last digit: same shape, wrong check digit."""
    return value[:-1] + str((int(value[-1]) + 3) % 10)


def pii_examples_v2(n_per_type: int = 50, seed: int = SEED) -> list[Row]:
    """(text, gold [(entity, value)]) rows of the second set; negatives have an empty gold."""
    from faker import Faker
    from stdnum.tr import vkn

    rng = random.Random(seed)
    tr, en, gb = Faker("tr_TR"), Faker("en_US"), Faker("en_GB")
    for i, fk in enumerate((tr, en, gb)):
        fk.seed_instance(seed + i)

    def vkn_number() -> str:
        body = "".join(rng.choice("0123456789") for _ in range(9))
        return body + vkn.calc_check_digit(body)

    def card() -> str:
        number = tr.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex"]))
        return rng.choice([number, _spaced(number), "-".join(_spaced(number).split())])

    makers: dict[str, Callable[[], str]] = {
        "EMAIL": lambda: rng.choice([tr.email, en.company_email, gb.free_email])(),
        "PHONE": lambda: _phone(rng),
        "TCKN": tr.ssn,
        "VKN": vkn_number,
        "IBAN": lambda: rng.choice([tr.iban(), _spaced(tr.iban()), gb.iban()]),
        "CARD": card,
        "SSN": en.ssn,
        "IP": lambda: rng.choice([en.ipv4_public(), en.ipv4_private(), en.ipv6()]),
    }
    rows: list[Row] = []
    for entity, make in makers.items():
        for _ in range(n_per_type):
            value, lang = make(), rng.choice(["tr", "en"])
            label = _LABELS[lang][entity]
            text = rng.choice(_GENERIC[lang]).format(label=label, value=value)
            rows.append((text, [(entity, value)]))
            if entity in {"TCKN", "VKN", "CARD"}:
                bad = _flip(value)
                rows.append((rng.choice(_GENERIC[lang]).format(label=label, value=bad), []))
    for _ in range(n_per_type):
        value = _dob(rng)
        rows.append((rng.choice(_DOB_TEMPLATES).format(value=value), [("DOB", value)]))
    return rows + _negatives(rng, n_per_type)


def _plain_number(rng: random.Random, digits: int) -> str:
    """A digit run that fails every checksum we mask on (a valid one *is* a possible id)."""
    from stdnum import luhn
    from stdnum.tr import tckimlik, vkn

    while True:
        number = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        if not (tckimlik.is_valid(number) or vkn.is_valid(number) or luhn.is_valid(number)):
            return number


def _negatives(rng: random.Random, n: int) -> list[Row]:
    """Number-heavy sentences with no personal data at all."""
    out: list[Row] = []
    for _ in range(n):
        d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2020, 2027)
        amount = f"{rng.randint(1, 999)}.{rng.randint(100, 999)},00"
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"
        texts = [
            f"Toplantı {d:02d}.{m:02d}.{y} saat 14:30'da, salon 3.",
            f"Invoice {_plain_number(rng, 8)} is due on {y}-{m:02d}-{d:02d}.",
            f"Sipariş {_plain_number(rng, 10)} için {amount} TL ödendi.",
            f"Release {version} shipped to {rng.randint(10, 999)} servers.",
            f"Stok kodu {_plain_number(rng, 11)}, raf {rng.randint(1, 40)}.",
        ]
        out.append((rng.choice(texts), []))
    return out
