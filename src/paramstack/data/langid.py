"""Language identification with py3langid's bundled model (offline, about 0.1 ms per kB).

Only the first 1,000 characters are classified: a document's language is settled long before
its end, and the cost is linear in the length.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_PREFIX = 1000


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of ``text``."""
    lang, prob = _identifier().classify(text[:_PREFIX])
    return str(lang), float(prob)
