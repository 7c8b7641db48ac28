"""Domain disclaimers (medical, legal) appended to outputs, in the answer's language.

The tenant's domain comes from the registry (``Model.domain`` / tenant settings) and is passed
by the caller; the language is guessed from the answer itself (Turkish letters and function
words), because a Turkish tenant's users may still ask in English.
"""

from __future__ import annotations

import re

from paramstack.guard.textnorm import turkish_lower

BUILTIN: dict[str, dict[str, str]] = {
    "medical": {
        "tr": "Bu yanıt bilgilendirme amaçlıdır ve tıbbi tavsiye değildir; tanı ve tedavi için "
        "bir sağlık profesyoneline başvurun. Acil durumda 112'yi arayın.",
        "en": "This answer is for information only and is not medical advice; consult a "
        "qualified health professional for diagnosis or treatment. In an emergency call your "
        "local emergency number.",
    },
    "legal": {
        "tr": "Bu yanıt genel bilgi niteliğindedir ve hukuki danışmanlık yerine geçmez; "
        "durumunuz için bir avukata danışın.",
        "en": "This answer is general information and not legal advice; consult a licensed "
        "lawyer about your situation.",
    },
}
_TURKISH = re.compile(
    r"[çğıöşü]|\b(?:ve|bir|bu|için|ile|değil|olarak|çok|daha|gibi|ama|veya|mı|mi)\b"
)
_ENGLISH = re.compile(r"\b(?:the|and|is|are|of|to|for|with|not|this|that|you|can)\b")
SEPARATOR = "\n\n---\n"


def language_of(text: str) -> str:
    """``tr`` or ``en`` by counting Turkish markers against English function words."""
    sample = turkish_lower(text[:2000])  # no re.IGNORECASE: it equates ı with i
    return "tr" if len(_TURKISH.findall(sample)) >= len(_ENGLISH.findall(sample)) else "en"


def disclaimer_for(
    domain: str | None, text: str, overrides: dict[str, dict[str, str]] | None = None
) -> str | None:
    """The disclaimer to append for ``domain`` (None when the domain needs none)."""
    if not domain:
        return None
    texts = (overrides or {}).get(domain) or BUILTIN.get(domain)
    if not texts:
        return None
    lang = language_of(text)
    return texts.get(lang) or next(iter(texts.values()))


def append_disclaimer(text: str, disclaimer: str) -> str:
    """Append once: an answer that already ends with the disclaimer is left as it is."""
    if text.rstrip().endswith(disclaimer):
        return text
    return f"{text}{SEPARATOR}{disclaimer}"
