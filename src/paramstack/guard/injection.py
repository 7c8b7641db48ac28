"""Prompt-injection / jailbreak detection in Turkish and English: patterns, then a classifier.

Both layers read the de-obfuscated text (:func:`~paramstack.guard.textnorm.deobfuscate`), so
``İGNORE``, ``1gn0r3``, ``i g n o r e`` and Cyrillic look-alikes meet the same rule. Patterns
are written in that folded ASCII form (``talimatları`` → ``talimatlari``) and catch the
canonical phrasings with a named rule; the classifier (:mod:`injection_model`) generalises to
paraphrases. A pattern hit reports its own rule name, so a block says *which* rule fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paramstack.guard.injection_model import InjectionModel
from paramstack.guard.textnorm import deobfuscate

_W = r"(?:\w+ ){0,4}"  # up to four filler words between the parts of a phrase
PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(rx)
    for name, rx in {
        "en.ignore_instructions": (
            r"\b(?:ignore|disregard|forget|override|bypass|neglect|skip|drop|abandon)\b "
            rf"{_W}(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|"
            r"system|the)\b ?"
            rf"{_W}(?:instructions?|prompts?|rules|directives?|guidelines|commands|context|"
            r"constraints|restrictions|programming|guardrails)"
        ),
        "en.reveal_system_prompt": (
            r"\b(?:reveal|show|print|output|repeat|display|tell|give|leak|dump|share|copy|recite|"
            rf"what (?:is|are|were))\b {_W}(?:system|initial|hidden|original|secret|internal|"
            r"developer|pre-?prompt)(?: \w+)? (?:prompt|instructions|message|rules|directives)"
        ),
        "en.unrestricted_persona": (
            r"\b(?:do anything now|developer mode|dev mode|jailbr(?:eak|oken)|god mode|"
            r"dan mode|(?:you|u) are (?:now )?(?:dan|stan|dude|aim)\b|"
            r"(?:no|without any|without) (?:restrictions|limits|limitations|filters|censorship|"
            r"ethical guidelines|moral|rules)|unfiltered|uncensored|amoral|unrestricted)"
        ),
        "en.new_authority": (
            r"\b(?:new|updated|real|actual) (?:instructions|task|rules|system prompt|directive)\b|"
            r"\bi am (?:your|the) (?:developer|creator|administrator|admin|owner)\b|"
            r"<\|?(?:im_start|im_end|system|endoftext)\|?>|\[/?(?:inst|system)\]"
        ),
        "tr.ignore_instructions": (
            r"(?:onceki|yukaridaki|tum|butun|eski|mevcut|ilk|verilen|sistem|sana verilen)\w* "
            rf"{_W}(?:talimat|komut|kural|yonerge|mesaj|istem|direktif|kisitlama|emir)\w* "
            rf"{_W}(?:unut|yok say|gormezden gel|dikkate alma|iptal|gecersiz|atla|umursama|sil|"
            r"kaldir|bosver)"
        ),
        "tr.drop_rules": (
            r"(?:talimat|kural|yonerge|kisitlama|filtre|politika|sinir|rol)\w* "
            rf"{_W}(?:unut|yok say|gormezden gel|devre disi|gecersiz (?:kil|say)|kaldir|"
            r"iptal (?:et|edildi)|askiya al)"
        ),
        "tr.reveal_system_prompt": (
            r"(?:sistem (?:istem|mesaj|talimat|komut|prompt|yonerge)|gizli (?:talimat|komut|"
            r"yonerge|kural)|ic (?:yonerge|talimat|kural))\w* "
            rf"{_W}(?:goster|yaz|acikla|paylas|soyle|tekrarla|ver|dok|ifsa|aktar|listele)"
        ),
        "tr.unrestricted_persona": (
            r"(?:gelistirici mod|sansursuz|filtresiz|kisitlamasiz|kuralsiz|kural tanima|"
            r"sinirsiz bir|her seyi yap|asla reddet|reddetme hakk|hicbir kural|etik kural\w* yok|"
            r"\bdan(?:'?sin|'?sin| modu| olarak)\b|tam yetki)"
        ),
    }.items()
}


@dataclass(frozen=True)
class InjectionHit:
    rule: str
    score: float


class InjectionDetector:
    """Pattern layer first (cheap, named), classifier second (``threshold`` from the policy)."""

    def __init__(self, model: InjectionModel | None, threshold: float | None = None) -> None:
        self.model = model
        self.threshold = (
            threshold if threshold is not None else (model.threshold if model is not None else 1.0)
        )

    def detect(self, text: str) -> InjectionHit | None:
        norm = deobfuscate(text)
        for name, pattern in PATTERNS.items():
            if pattern.search(norm):
                return InjectionHit(f"injection.pattern.{name}", 1.0)
        if self.model is not None:
            score = self.model.score(text)
            if score >= self.threshold:
                return InjectionHit("injection.classifier", score)
        return None

    def score(self, text: str) -> float:
        """The value compared with the threshold: 1.0 on a pattern hit, else the model's."""
        hit = self.detect(text)
        if hit is not None:
            return hit.score
        return self.model.score(text) if self.model is not None else 0.0
