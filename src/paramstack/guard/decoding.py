"""Hidden text inside a prompt: encoded runs decoded, and whole-text ciphers undone.

An instruction sent as base64, base32, hex, binary, ``\\uXXXX`` escapes, Ascii85/Base85,
invisible Unicode tag characters, ROT13 or reversed text reaches the model (which decodes it
happily) while every pattern and n-gram sees only noise. :func:`hidden_texts` returns the
readable texts such a prompt carries, so the injection check can judge them like any prompt.
Encoded content is not suspicious in itself (keys, hashes, attachments are encoded too): a
decoded run only counts when it decodes to readable words, and it is then judged by the same
patterns and classifier as plain text.

Cheap on ordinary prompts: the run regexes need long unbroken runs of their alphabet, and the
whole-text ciphers (ROT13, reversal) are only tried by the pattern layer.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Iterator

from paramstack.guard.textnorm import fold

_MIN_RUN = 16
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_B32 = re.compile(r"[A-Z2-7]{16,}=*")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){8,}")
_BIN = re.compile(r"\b(?:[01]{8}\s?){4,}")
_UESC = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}){4,}")
_A85 = re.compile(r"<~(.{8,}?)~>", re.S)
_B85 = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}")
_TAGS = re.compile("[\U000e0000-\U000e007f]{4,}")
_WORDS = re.compile(r"[A-Za-z]{2,}")
# Spaced hex pairs / 8-bit groups, tag characters, escapes, Ascii85 brackets: the encodings a
# long-token test misses. Together with that test, a cheap gate before the decoders.
_SPACED_OR_MARKED = re.compile(
    r"(?:\b[0-9a-fA-F]{2,8}[ :]){4}|[\U000e0000-\U000e007f]|\\[ux][0-9a-fA-F]|<~"
)
# Words every injection pattern needs one of; a ciphered variant without any is not scanned.
_CIPHER_HINT = re.compile(
    r"ignor|disregard|forget|overrid|bypass|instruction|system|prompt|rules|reveal|jailbreak|"
    r"developer mode|unrestricted|unfiltered|refus|pretend|talimat|kural|yonerge|unut|sistem|"
    r"gizli|sansur|filtre|yok say"
)
HINT_SHORTEST = 4  # the fewest characters a hint can match (a test derives it from the regex)


def readable(text: str) -> bool:
    """Mostly printable letters and spaces, with a few real-looking words (not binary junk)."""
    if len(text) < 8:
        return False
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text) / len(text)
    letters = sum(ch.isalpha() or ch == " " for ch in text) / len(text)
    return printable > 0.95 and letters > 0.7 and len(_WORDS.findall(text)) >= 3


def _utf8(data: bytes) -> str:
    return data.decode("utf-8", errors="strict")


def _b64(run: str) -> str:
    padded = run + "=" * (-len(run) % 4)
    alt = "-_" if ("-" in run or "_" in run) else None
    return _utf8(base64.b64decode(padded, altchars=alt.encode() if alt else None))


def _b32(run: str) -> str:
    return _utf8(base64.b32decode(run + "=" * (-len(run) % 8)))


def _hex(run: str) -> str:
    return _utf8(binascii.unhexlify(re.sub(r"[ :]", "", run)))


def _bin(run: str) -> str:
    return _utf8(bytes(int(b, 2) for b in run.split() if len(b) == 8))


def _escapes(run: str) -> str:
    return codecs.decode(run, "unicode_escape")


def _a85(run: str) -> str:
    return _utf8(base64.a85decode(re.sub(r"\s", "", run)))


def _b85(run: str) -> str:
    return _utf8(base64.b85decode(run))


_RUNS: tuple[tuple[re.Pattern[str], Callable[[str], str]], ...] = (
    (_B64, _b64),
    (_B32, _b32),
    (_HEX, _hex),
    (_BIN, _bin),
    (_UESC, _escapes),
    (_B85, _b85),
)


# Exact shortcuts for the run regexes (a test compares them with plain ``finditer``): a class
# without whitespace matches inside one whitespace-free token, so only tokens at least as
# long as its shortest match are searched; an escape run needs a backslash.
TOKEN_BOUND: dict[re.Pattern[str], int] = {_B64: 16, _B32: 16, _B85: 20}
NEEDS: dict[re.Pattern[str], str] = {_UESC: "\\"}


def _matches(regex: re.Pattern[str], text: str, tokens: list[str]) -> Iterator[re.Match[str]]:
    """``regex.finditer(text)``'s matches (their text, in order), searching less of it."""
    if regex in NEEDS and NEEDS[regex] not in text:
        return
    if regex not in TOKEN_BOUND:
        yield from regex.finditer(text)
        return
    for token in tokens:
        if len(token) >= TOKEN_BOUND[regex]:
            yield from regex.finditer(token)


def decoded_runs(text: str, limit: int = 8) -> Iterator[str]:
    """Readable texts hidden in encoded runs of ``text`` (at most ``limit``)."""
    tokens = text.split()
    if max(map(len, tokens), default=0) < _MIN_RUN and not _SPACED_OR_MARKED.search(text):
        return
    found = 0
    tagged = "" if text.isascii() else "".join(_TAGS.findall(text))  # tags are not ASCII
    tags = "".join(chr(ord(ch) - 0xE0000) for ch in tagged)
    if readable(tags):
        found += 1
        yield tags
    for m in _A85.finditer(text):
        try:
            out = _a85(m.group(1))
        except (ValueError, UnicodeDecodeError):
            continue
        if readable(out):
            found += 1
            yield out
    for regex, decode in _RUNS:
        for m in _matches(regex, text, tokens):
            if found >= limit:
                return
            run = m.group(0).strip()
            if len(run) < _MIN_RUN:
                continue
            try:
                out = decode(run)
            except (ValueError, UnicodeDecodeError):
                continue
            if readable(out):
                found += 1
                yield out


_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)


def ciphered(text: str) -> list[str]:
    """The text under ROT13 and reversed (ciphers a model undoes by itself), each only when
    it then contains a word the injection patterns need. Both variants are as long as
    ``text`` (``fold`` keeps the length), so a text shorter than any hint has none."""
    if len(text) < HINT_SHORTEST:
        return []
    return [v for v in (text.translate(_ROT13), text[::-1]) if _CIPHER_HINT.search(fold(v))]
