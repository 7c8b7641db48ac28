"""A third PII evaluation set ("v3"), written after every pattern change and never tuned on.

Sets one and two were both used to find and fix bugs, so neither is an honest estimate any
more. This one changes the *context* rather than the values: identifiers inside JSON, CSV
rows, e-mail signatures and chat lines; two identifiers in one sentence; Turkish case suffixes
glued on with an apostrophe (``05321234567'yi``, ``TCKN'si``); identifiers right after a colon
or inside parentheses and quotes. Look-alikes that must stay unmasked: IBANs and cards with a
broken checksum, 11-digit numbers that fail the TCKN rule, impossible SSNs (area 000/666/9xx).
Its figures are reported as measured, whatever they are.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

Row = tuple[str, list[tuple[str, str]]]
SEED = 7_431


def _tr_mobile(rng: random.Random) -> str:
    digits = f"05{rng.choice('0345')}{rng.randint(0, 9)}{rng.randint(1000000, 9999999)}"
    return rng.choice([digits, f"{digits[:4]} {digits[4:7]} {digits[7:9]} {digits[9:]}"])


def _bad_iban(iban: str) -> str:
    check = (int(iban[2:4]) + 7) % 97 or 11
    return f"{iban[:2]}{check:02d}{iban[4:]}"


def _bad_luhn(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 5) % 10)


def _bad_tckn(rng: random.Random) -> str:
    from stdnum.tr import tckimlik

    while True:
        number = str(rng.randint(10**10, 10**11 - 1))
        if not tckimlik.is_valid(number):
            return number


def pii_examples_v3(n_per_context: int = 40, seed: int = SEED) -> list[Row]:
    """(text, gold [(entity, value)]) rows; negatives have an empty gold list."""
    from faker import Faker
    from stdnum.tr import vkn

    rng = random.Random(seed)
    tr, en = Faker("tr_TR"), Faker("en_US")
    tr.seed_instance(seed)
    en.seed_instance(seed + 1)

    def vkn_number() -> str:
        body = "".join(rng.choice("0123456789") for _ in range(9))
        return body + vkn.calc_check_digit(body)

    def json_row() -> Row:
        email, tckn = tr.email(), tr.ssn()
        text = json.dumps(
            {"ad": tr.first_name(), "eposta": email, "tckn": tckn}, ensure_ascii=False
        )
        return text, [("EMAIL", email), ("TCKN", tckn)]

    def csv_row() -> Row:
        iban, phone = tr.iban(), _tr_mobile(rng)
        return f"{rng.randint(1, 999)};{tr.last_name()};{iban};{phone}", [
            ("IBAN", iban),
            ("PHONE", phone),
        ]

    def signature() -> Row:
        email, phone = en.company_email(), _tr_mobile(rng)
        return (
            f"Best regards,\n{en.name()}\nSales | {en.company()}\nM: {phone}\nE: {email}",
            [("PHONE", phone), ("EMAIL", email)],
        )

    def suffixes() -> Row:
        phone, tckn = _tr_mobile(rng), tr.ssn()
        return (
            f"Lütfen {phone}'yi arayın; hastanın TCKN'si {tckn}'dir.",
            [("PHONE", phone), ("TCKN", tckn)],
        )

    def punctuation() -> Row:
        number, ip, tax = tr.credit_card_number(card_type="visa16"), en.ipv4_public(), vkn_number()
        return (
            f'Kart:{number} (IP "{ip}"), VKN:{tax}.',
            [("CARD", number), ("IP", ip), ("VKN", tax)],
        )

    def chat() -> Row:
        ssn, email = en.ssn(), en.free_email()
        return f"[10:42] user: my ssn is {ssn} and mail {email}, pls fix", [
            ("SSN", ssn),
            ("EMAIL", email),
        ]

    def look_alikes() -> Row:
        iban, card = tr.iban(), tr.credit_card_number(card_type="mastercard")
        ssn = f"{rng.choice(['000', '666', '912'])}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        return (
            rng.choice(
                [
                    f"Hatalı IBAN girildi: {_bad_iban(iban)}",
                    f"Reddedilen kart {_bad_luhn(card)}, tekrar deneyin.",
                    f"Dosya no {_bad_tckn(rng)} arşivde.",
                    f"Test SSN {ssn} is not a real one.",
                ]
            ),
            [],
        )

    makers: list[Callable[[], Row]] = [
        json_row,
        csv_row,
        signature,
        suffixes,
        punctuation,
        chat,
        look_alikes,
        look_alikes,
    ]
    return [make() for make in makers for _ in range(n_per_context)]
