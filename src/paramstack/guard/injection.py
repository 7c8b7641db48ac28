"""Prompt-injection / jailbreak detection in Turkish and English: patterns, then a classifier.

Both layers read the de-obfuscated text (:func:`~paramstack.guard.textnorm.deobfuscate`), so
``İGNORE``, ``1gn0r3``, ``i g n o r e`` and Cyrillic look-alikes meet the same rule. Patterns
are written in that folded ASCII form (``talimatları`` → ``talimatlari``) and catch the
canonical phrasings with a named rule; the classifier (:mod:`injection_model`) generalises to
paraphrases. A pattern hit reports its own rule name, so a block says *which* rule fired.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from paramstack.guard.channels import Channels, split_channels
from paramstack.guard.decoding import ciphered, decoded_runs
from paramstack.guard.injection_model import InjectionModel, IntArray
from paramstack.guard.regex_prefilter import required_literals
from paramstack.guard.textnorm import deobfuscate

_W = r"(?:\w+ ){0,4}"  # up to four filler words between the parts of a phrase
PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(rx)
    for name, rx in {
        "en.ignore_instructions": (
            r"\b(?:ignore|disregard|forget|override|bypass|neglect|skip|drop|abandon|set aside|"
            r"stop following|nevermind|never mind)\b "
            rf"{_W}(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|"
            r"system|the)\b ?"
            rf"{_W}(?:instructions?|prompts?|rules|directives?|guidelines|guidance|commands|"
            r"constraints|restrictions|programming|guardrails|system message|training|"
            r"content polic\w+|safety \w+)"
        ),
        "en.reveal_system_prompt": (
            r"\b(?:reveal|show|print|output|repeat|display|tell|give|leak|dump|share|copy|recite|"
            rf"quote|translate|spell out|what (?:is|are|were|was written in))\b {_W}(?:your|its)"
            r" (?:(?:system|initial|hidden|original|secret|internal|confidential|complete|full|"
            r"developer|pre-?)\s?)*(?:prompt|instructions|message|rules|directives|guidelines|"
            r"configuration)"
            r"|\b(?:reveal|show|print|output|repeat|display|leak|dump|recite|quote)\b "
            rf"{_W}(?:hidden|original|secret|internal|confidential|developer|pre-?prompt)"
            r"(?: \w+)? (?:prompt|instructions|message|rules|directives)(?! (?:i|we) )"
        ),
        "en.unrestricted_persona": (
            r"\b(?:do anything now|dan mode|god mode|jailbreak mode|developer mode (?:enabled|on)|"
            r"(?:you|u) are (?:now )?(?:dan|stan|dude|aim)\b|jailbroken)"
            r"|\b(?:you are|you're|act as|acting as|respond as|answer as|pretend|simulate|"
            r"imagine you|become|switch to|enable|activate|enter|from now on)\b"
            r"(?: \S+){0,8} (?:unrestricted|unfiltered|uncensored|amoral|unaligned|"
            r"(?:no|zero|without any|without) (?:restrictions|limits|limitations|filters|"
            r"censorship|ethical guidelines|morals?|rules|guardrails|content polic\w+))"
        ),
        "en.new_authority": (
            r"\bnew (?:system )?(?:instructions?|rules?|task|directive|objective|prompt)s? ?"
            r"(?::|from (?:the|your) (?:developer|admin|system|creators?))|"
            r"\b(?:i am|i'm|this is) your (?:developer|creator|administrator|admin|owner|master)\b|"
            r"\bsystem override\b|\badmin(?:istrator)? (?:command|override)\b|"
            r"\b(?:safety|content|moderation) (?:filters?|checks?|protocols?|rules|polic\w+) "
            r"(?:are |is |have been )?(?:now )?(?:disabled|off|turned off|lifted|removed|"
            r"deactivated|suspended)|"
            r"<\|?(?:im_start|im_end|system|endoftext)\|?>|\[/?(?:inst|system)\]"
        ),
        "en.indirect": (
            r"\b(?:note|instructions?|message|hidden instruction) (?:to|for) (?:the |any )?"
            r"(?:ai|assistant|chatbot|language model|llm|model)\b|\b(?:if you are|for) an? "
            r"(?:ai|language model|llm|assistant|chatbot) (?:reading|processing|summari[sz]ing)"
        ),
        "en.refusal_suppression": (
            r"\bnever refuse\b|\brefusing is not allowed\b|\byou (?:can ?not|must not|may not|"
            r"are not allowed to) refuse\b|\b(?:without|no) (?:any )?(?:warnings|disclaimers),? "
            r"(?:or )?(?:refusals|moral)"
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


# The fewest characters any pattern can match (``tests/test_guard_fast_paths.py`` derives it
# from the compiled patterns): a shorter text ("hi", "ok") is not searched ten times.
SHORTEST_MATCH = 6


# Per pattern, the words one of which any match contains (see ``regex_prefilter``): a text
# without them skips that pattern's search. None in a test switches the filters off.
PREFILTERS: dict[str, frozenset[str] | None] | None = {
    name: required_literals(pattern) for name, pattern in PATTERNS.items()
}


def _pattern(norm: str) -> str | None:
    """Name of the first pattern matching the de-obfuscated ``norm``."""
    if len(norm) < SHORTEST_MATCH:
        return None
    filters = PREFILTERS
    for name, pattern in PATTERNS.items():
        needs = filters[name] if filters is not None else None
        if needs is not None:  # ``may_match`` inlined: no generator per pattern
            for literal in needs:
                if literal in norm:
                    break
            else:
                continue
        if pattern.search(norm):
            return name
    return None


@dataclass(frozen=True)
class InjectionHit:
    rule: str
    score: float


class InjectionDetector:
    """Pattern layer first (cheap, named), classifier second.

    The classifier's threshold is the policy's when set, else the model's calibrated threshold
    for the text's language (:meth:`InjectionModel.threshold_for`).
    """

    def __init__(
        self,
        model: InjectionModel | None,
        threshold: float | None = None,
        data_model: InjectionModel | None = None,
        *,
        channels: bool = False,
    ) -> None:
        self.model = model
        self.channels = channels  # False: the whole text as one (no task / data split)
        self.data_model = data_model  # scores the document part (channels.split_channels)
        self.fixed_threshold = threshold  # the policy's; None = the model's per-language ones
        self.threshold = (
            threshold if threshold is not None else (model.threshold if model is not None else 1.0)
        )

    def detect(
        self,
        text: str,
        ids: IntArray | Callable[[], IntArray] | None = None,
        norm: str | None = None,
    ) -> InjectionHit | None:
        """Plain text first; then texts hidden in encoded runs (both layers, ``encoded.*``
        rules); then ROT13 / reversed text (patterns only: ciphered noise is no prose).
        ``ids`` / ``norm``: the text's n-gram features (or a function computing them, called
        only when the whole text is scored) / de-obfuscated form when the caller already has
        them (:class:`~paramstack.guard.checks.TextView`)."""
        hit = self._detect(text, "", ids, norm)
        if hit is not None:
            return hit
        for hidden in decoded_runs(text):
            hit = self._detect(hidden, "encoded.")
            if hit is not None:
                return hit
        for variant in ciphered(text):
            rule = _pattern(deobfuscate(variant))
            if rule is not None:
                return InjectionHit(f"injection.cipher.{rule}", 1.0)
        return None

    def _detect(
        self,
        text: str,
        kind: str,
        ids: IntArray | Callable[[], IntArray] | None = None,
        norm: str | None = None,
    ) -> InjectionHit | None:
        rule = _pattern(deobfuscate(text) if norm is None else norm)
        if rule is not None:
            return InjectionHit(f"injection.{kind}pattern.{rule}", 1.0)
        channels = split_channels(text) if self.channels else Channels(text, "", False)
        if channels.split and (channels.task or not channels.data):
            # the whole-prompt model reads the task (defensive wording dropped); the
            # document is judged by the document model below
            text, ids, norm = channels.task, None, None
        if self.model is not None:
            if self.model.windows:  # windows need n-gram offsets: the model featurises itself
                score = self.model.score(text, norm)
            else:
                if callable(ids):  # the caller's features, computed only when scored here
                    ids = ids()
                score = self.model.score(text) if ids is None else self.model.score_ids(ids)
            limit = self.fixed_threshold
            if limit is None:
                limit = self.model.threshold_for(text)
            if score >= limit:
                return InjectionHit(f"injection.{kind}classifier", score)
        if channels.data:
            return self._detect_data(channels.data, kind)
        return None

    def _detect_data(self, data: str, kind: str = "") -> InjectionHit | None:
        if self.data_model is None:
            return None
        score = self.data_model.score(data)
        if score >= self.data_model.threshold_for(data):
            return InjectionHit(f"injection.{kind}data_classifier", score)
        return None

    def detect_data(self, data: str) -> InjectionHit | None:
        """A text known to be data (retrieved context, tool output): the patterns, the
        whole-text classifier and the document classifier, whatever its wording."""
        return self.detect(data) or (self._detect_data(data) if self.channels else None)

    def score(self, text: str) -> float:
        """The value compared with the threshold: 1.0 on a pattern hit, else the model's."""
        hit = self.detect(text)
        if hit is not None:
            return hit.score
        return self.model.score(text) if self.model is not None else 0.0
