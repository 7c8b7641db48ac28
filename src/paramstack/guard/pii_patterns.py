"""Structured-identifier recognizers: a cheap regex proposes, a checksum or a rule disposes.

Every candidate is validated before it counts (TCKN, VKN, IBAN, card: python-stdnum's
checksums; IPs: :mod:`ipaddress`; dates: the calendar), so a look-alike with a bad check digit
is never masked. Bare digit runs that could be several things are typed by *shape and context*:
a Turkish phone needs a trunk/country prefix, separators or a phone word nearby; a plain
10-digit run is a VKN only if its check digit is right. That is what keeps phone precision
high where Presidio's generic phone matcher takes every 10-11 digit run (see TARGETS.md).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.tr import tckimlik as _tckn
from stdnum.tr import vkn as _vkn

from paramstack.guard.pii_starts import Starts, scan
from paramstack.guard.regex_prefilter import may_match, required_literals


@dataclass(frozen=True, slots=True)
class Span:
    """One identifier found in a text: where, what type, and which rule found it."""

    start: int
    end: int
    entity: str
    rule: str
    score: float = 1.0


# (text, its fold, the text's candidate start positions) -> spans. Each finder scans only
# where its pattern can start (:mod:`paramstack.guard.pii_starts`); the comment above each
# ``scan`` says why those candidates include every possible start. The digit-led patterns all
# forbid a digit right before their start (lookbehind), so they start at a digit run's start.
Finder = Callable[[str, str, Starts], Iterator[Span]]

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])"
)
_TCKN = re.compile(r"(?<![\d.,])[1-9]\d{10}(?![\d]|[.,]\d)")
_VKN = re.compile(r"(?<![\d.,])\d{10}(?![\d]|[.,]\d)")
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)", re.I)
_CARD = re.compile(
    r"(?<![\d-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -]?)\d{6}\2\d{4,5}|\d{12,19})(?![\d-])"
)
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_BARE = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}(?!\d)")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?!\d|\.\d)"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:])",
    re.I,
)
# Turkish numbers: optional +90/0090/90, optional trunk 0, a 3-digit area/operator code
# (2xx-4xx landline, 5xx mobile, 850 service), then 3-2-2 or 3-4 subscriber digits.
_TR_PHONE = re.compile(
    r"(?<![\w+])(?P<cc>(?:\+|00)90[ .-]?|90[ .-]?)?(?P<trunk>\(?0[ ]?)?\(?(?P<area>[2-58]\d{2})\)?"
    r"(?P<s1>[ .-]?)(?P<a>\d{3})(?P<s2>[ .-]?)(?P<b>\d{2})[ .-]?(?P<c>\d{2})(?![\d-])"
)
_INTL_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)(?!90)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}"
    r"(?:[ ]?(?:x|ext\.?) ?\d{1,5})?(?![\d-])"
)
_US_PHONE = re.compile(r"(?<![\w+-])(?:\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}(?:x\d{1,5})?(?![\d-])")
_NUMBER_WORDS = re.compile(
    r"\b(?P<phone>tel|telefon\w*|phone|cep|gsm|mobile?|mobil|ara|arayin|call|whatsapp|fax|faks)\b"
    r"|\b(?P<tax>vkn|vergi|tax|tin)\b"
)
_VALID_AREA = re.compile(
    r"2(?:[1-9]\d)|3(?:[1-9]\d)|4(?:[1-8]\d)|5(?:0[1-9]|3\d|4\d|5\d|6[01])|850"
)

_MONTHS = (
    "ocak|subat|mart|nisan|mayis|haziran|temmuz|agustos|eylul|ekim|kasim|aralik|"
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE = re.compile(
    rf"(?<![\w.])(?:(?P<d>\d{{1,2}})[./-](?P<m>\d{{1,2}})[./-](?P<y>(?:19|20)\d{{2}})"
    rf"|(?P<y2>(?:19|20)\d{{2}})-(?P<m2>\d{{2}})-(?P<d2>\d{{2}})"
    rf"|(?P<d3>\d{{1,2}})\.? (?P<mn3>{_MONTHS})\.? (?P<y3>(?:19|20)\d{{2}})"
    rf"|(?P<mn4>{_MONTHS})\.? (?P<d4>\d{{1,2}}),? (?P<y4>(?:19|20)\d{{2}}))(?![\w])"
)
_DOB_BEFORE = re.compile(
    r"(?:dogum tarih|d\. ?tarih|dogum gunu|dogdugu|dogdum|dogmus|dob\b|date of birth|"
    r"birth ?date|birthday|born)"
)
# After the date the birth word may come a short clause later ("12.03.1985 yazıyor; doğum
# tarihi doğru mu?"), but not past the end of the sentence.
_DOB_AFTER = re.compile(
    r"^[ ,;:(\-]*(?:dogumlu|tarihinde dog|\(?(?:dogum tarihi|d\. ?t\.|dob|date of birth)\b)"
    r"|^[^.!?\n]{0,24}?\b(?:dogum tarih\w*|dogum gunu|date of birth|birth ?date|dob)\b"
)
_AFTER_WINDOW = 48
_MONTH_SET = frozenset(_MONTHS.split("|"))
_MONTH_SIZES = sorted({len(m) for m in _MONTH_SET})
_BIRTH_BEFORE = required_literals(_DOB_BEFORE)
_BIRTH_AFTER = required_literals(_DOB_AFTER)
_MONTH_NUM = {m: i % 12 + 1 for i, m in enumerate(_MONTHS.split("|")[:24])}
_MONTH_NUM.update({m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr"])})
_MONTH_NUM.update(
    {"jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12}
)
_CONTEXT = 40
_MAESTRO = {"50", *(str(n) for n in range(56, 70))}


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _nearest_word(folded: str, start: int) -> str | None:
    """Which kind of number word ("phone" or "tax") stands closest before ``start``, if any."""
    last = None
    for m in _NUMBER_WORDS.finditer(folded, max(0, start - _CONTEXT), start):
        last = m.lastgroup
    return last


def find_email(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    for m in scan(_EMAIL, text, starts.email_starts()):
        yield Span(m.start(), m.end(), "EMAIL", "pii.email")


def find_tckn(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    for m in scan(_TCKN, text, starts.run_starts(11)):
        if _tckn.is_valid(m.group(0)):
            yield Span(m.start(), m.end(), "TCKN", "pii.tckn")


def find_vkn(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    for m in scan(_VKN, text, starts.run_starts(10)):
        if _vkn.is_valid(m.group(0)):
            yield Span(m.start(), m.end(), "VKN", "pii.vkn", 0.9)


def find_iban(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    # Two letters, then the check digits: a digit run starts two characters in.
    letters = [s - 2 for s in starts.run_starts(2) if s >= 2 and text[s - 2 : s].isalpha()]
    for m in scan(_IBAN, text, letters):
        candidate = m.group(0)
        # A trailing word may have been swallowed as a group: shorten until the checksum holds.
        while len(candidate) >= 15:
            if _iban.is_valid(candidate.upper()):
                yield Span(m.start(), m.start() + len(candidate), "IBAN", "pii.iban")
                break
            candidate = candidate[: candidate.rfind(" ")] if " " in candidate else candidate[:-1]


def find_card(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    for m in scan(_CARD, text, starts.run_starts(4)):
        digits = _digits(m.group(0))
        # 12 digits only for Maestro ranges (50, 56-69); others are 13-19 digits long.
        maestro = len(digits) == 12 and digits[:2] in _MAESTRO
        issuer = digits[0] in "23456" or digits.startswith("1800")  # 1800: old JCB range
        if (maestro or 13 <= len(digits) <= 19) and issuer and _luhn.is_valid(digits):
            yield Span(m.start(), m.end(), "CARD", "pii.card")


def find_ssn(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    for m in scan(_SSN, text, starts.run_starts(3, 3, "- ")):
        yield Span(m.start(), m.end(), "SSN", "pii.ssn")
    for m in scan(_SSN_BARE, text, starts.run_starts(9, 9)):
        before = folded[max(0, m.start() - _CONTEXT) : m.start()]
        if "ssn" in before or "social security" in before:
            yield Span(m.start(), m.end(), "SSN", "pii.ssn.context")


def find_ip(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    # The first octet is its whole digit run (1-3 digits), then a dot.
    for m in scan(_IPV4, text, starts.run_starts(1, 3, ".")):
        yield Span(m.start(), m.end(), "IP", "pii.ipv4")
    # At most four hex digits before the first ":", and at most four more to the second.
    for m in scan(_IPV6, text, (c - k for c in starts.colon_pairs(5) for k in range(5))):
        candidate = m.group(0)
        if candidate.count(":") >= 2 and sum(c.isalnum() for c in candidate) >= 3:
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            yield Span(m.start(), m.end(), "IP", "pii.ipv6")


def _inside_longer_number(text: str, start: int) -> bool:
    """A digit group right before ("2456 0041 7492 9398") makes the match the tail of a longer
    number (a card, an account), not a phone of its own."""
    return start >= 2 and text[start - 1] in " .-" and text[start - 2].isdigit()


def find_phone(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    plus, paren = starts.chars("+"), starts.chars("(")
    # Turkish: "+" / "00" / "90", "(" or "0" (trunk, maybe a run of one: "0 532 …"), "(" or
    # a digit (area code).
    for m in scan(_TR_PHONE, text, [*starts.run_starts(), *plus, *paren]):
        if not _VALID_AREA.fullmatch(m.group("area")) or _IPV4.fullmatch(m.group(0)):
            continue  # "216.247.69.89" is an address, not a number in Izmir
        if _inside_longer_number(text, m.start()):
            continue
        prefixed = bool(m.group("cc") or m.group("trunk"))
        separated = bool(m.group("s1") or m.group("s2")) or "(" in m.group(0)
        if prefixed or separated or _nearest_word(folded, m.start()) == "phone":
            yield Span(m.start(), m.end(), "PHONE", "pii.phone.tr")
    for m in scan(_INTL_PHONE, text, [*starts.run_starts(3), *plus]):  # "00" + [1-9]
        number = m.group(0).split("x")[0].split("ext")[0]
        digits = _digits(number)
        # "00" + bare digits is as likely a VKN/account number with leading zeros: need more.
        bare_00 = number.startswith("00") and number.isdigit() and len(digits) < 12
        if 8 <= len(digits) <= 15 and not bare_00 and not _inside_longer_number(text, m.start()):
            yield Span(m.start(), m.end(), "PHONE", "pii.phone.intl")
    for m in scan(_US_PHONE, text, [*starts.run_starts(3, 3, "-."), *paren]):
        yield Span(m.start(), m.end(), "PHONE", "pii.phone.us")


def _valid_date(m: re.Match[str]) -> bool:
    g = m.groupdict()
    try:
        if g["d"]:
            date(int(g["y"]), int(g["m"]), int(g["d"]))
        elif g["y2"]:
            date(int(g["y2"]), int(g["m2"]), int(g["d2"]))
        else:
            name, day, year = (
                (g["mn3"], g["d3"], g["y3"]) if g["mn3"] else (g["mn4"], g["d4"], g["y4"])
            )
            date(int(year), _MONTH_NUM[name], int(day))
    except (ValueError, KeyError):
        return False
    year = next(int(g[k]) for k in ("y", "y2", "y3", "y4") if g[k])
    return year <= date.today().year  # nobody was born in the future


def _date_starts(folded: str, runs: list[tuple[int, int]]) -> Iterator[int]:
    """Numeric dates start at a digit run; "March 5, 1990" starts at a month name that ends
    right before an optional dot and the space before its day (a run of one or two digits).
    ``runs``: the digit runs of the text, which are those of its fold (``fold`` keeps the
    length and never turns a digit into a non-digit or back: a test checks every code point)."""
    for start, end in runs:
        yield start
        if end - start > 2 or start < 2 or folded[start - 1] != " ":
            continue
        last = start - 3 if folded[start - 2] == "." else start - 2  # the month's last letter
        for size in _MONTH_SIZES:
            if folded[last + 1 - size : last + 1] in _MONTH_SET:
                yield last + 1 - size


def find_dob(text: str, folded: str, starts: Starts) -> Iterator[Span]:
    """Dates count as personal data only next to a birth word (``doğum tarihi``, ``born``)."""
    if not (may_match(_BIRTH_BEFORE, folded) or may_match(_BIRTH_AFTER, folded)):
        return  # no birth word anywhere: no date can count
    for m in scan(_DATE, folded, _date_starts(folded, starts.runs)):
        before = folded[max(0, m.start() - _CONTEXT) : m.start()]
        after = folded[m.end() : m.end() + _AFTER_WINDOW]
        if (_DOB_BEFORE.search(before) or _DOB_AFTER.search(after)) and _valid_date(m):
            yield Span(m.start(), m.end(), "DOB", "pii.dob")


# Earlier wins when spans overlap: a valid IBAN contains digit runs that look like a phone.
FINDERS: dict[str, Finder] = {
    "EMAIL": find_email,
    "IBAN": find_iban,
    "CARD": find_card,
    "TCKN": find_tckn,
    "PHONE": find_phone,
    "VKN": find_vkn,
    "SSN": find_ssn,
    "IP": find_ip,
    "DOB": find_dob,
}
