"""The worker-thread side of in-process generation: one ``model.generate`` call per prompt.

Text is produced inside a stopping criterion, because transformers calls it exactly once per
decoding step with every row's newest token, before the loop decides whether to go on: one
place both turns tokens into text deltas (held back while they might be the start of a stop
string or half of a UTF-8 character) and says which rows are done (EOS, a stop string, the
token limit, or the client gone). ``n`` choices are ``n`` copies of the prompt in one batch,
which greedy decoding also accepts (``num_return_sequences`` does not).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paramstack.errors import InvalidInput

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MAX_STOPS = 4  # as OpenAI


@dataclass(frozen=True, slots=True)
class Sampling:
    """The OpenAI sampling fields this backend honours, validated."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_p == 0

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> Sampling:
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        stop = body.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if len(stops) > MAX_STOPS or not all(isinstance(s, str) and s for s in stops):
            raise InvalidInput(f"stop takes 1 to {MAX_STOPS} non-empty strings", param="stop")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidInput("seed must be an integer", param="seed")
        return cls(
            max_new_tokens=_number(limit, "max_tokens", int, 1, None),
            temperature=_number(body.get("temperature", 1.0), "temperature", float, 0, 2),
            top_p=_number(body.get("top_p", 1.0), "top_p", float, 0, 1),
            n=_number(body.get("n", 1), "n", int, 1, 16),
            stop=stops,
            seed=seed,
        )


def _number(value: Any, name: str, kind: type, low: float, high: float | None) -> Any:
    if value is None:
        value = 1.0 if kind is float else 1
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and ok:
        ok = float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{name} must be a number {bound}", param=name)
    return kind(value)


@dataclass(frozen=True, slots=True)
class Delta:
    """New text of one row; with ``finish_reason`` also its generated-token count."""

    row: int
    text: str
    finish_reason: str | None = None
    tokens: int = 0


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that could still become a stop string."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest


class RowText:
    """One row's generated ids and how much of their text was handed out."""

    def __init__(
        self,
        decode: Callable[[list[int]], str],
        stops: tuple[str, ...],
        eos: frozenset[int],
        limit: int,
    ) -> None:
        self.decode, self.stops, self.eos, self.limit = decode, stops, eos, limit
        self.ids: list[int] = []
        self.sent = 0
        self.reason: str | None = None

    def push(self, token: int) -> tuple[str, str | None]:
        """The text to send after ``token``, and the finish reason when the row ended."""
        self.ids.append(token)
        text = self.decode(self.ids)
        cuts = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if cuts:
            return self.finish(text[: max(min(cuts), self.sent)], "stop")
        if token in self.eos:
            return self.finish(text, "stop")
        if len(self.ids) >= self.limit:
            return self.finish(text, "length")
        safe = len(text) - _held_back(text, self.stops)
        while safe > self.sent and text[safe - 1] == "\ufffd":  # half a UTF-8 character
            safe -= 1
        delta, self.sent = text[self.sent : safe], max(self.sent, safe)
        return delta, None

    def finish(self, text: str | None, reason: str) -> tuple[str, str]:
        text = self.decode(self.ids) if text is None else text
        delta, self.sent, self.reason = text[self.sent :], len(text), reason
        return delta, reason


def eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return frozenset(int(i) for i in [*ids, tokenizer.eos_token_id] if i is not None)


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: list[int],
    sampling: Sampling,
    emit: Callable[[Delta], None],
    cancel: threading.Event,
) -> None:
    """Generate ``sampling.n`` rows for ``prompt``, emitting deltas as they come."""
    import torch
    from transformers import StoppingCriteriaList

    eos = eos_ids(model, tokenizer)

    def decode(ids: list[int]) -> str:
        return str(tokenizer.decode(ids, skip_special_tokens=True))

    rows = [RowText(decode, sampling.stop, eos, sampling.max_new_tokens) for _ in range(sampling.n)]

    def step(input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        done = []
        for i, token in enumerate(input_ids[:, -1].tolist()):
            row = rows[i]
            if row.reason is None:
                text, reason = row.push(int(token))
                if text or reason:
                    emit(Delta(i, text, reason, len(row.ids) if reason else 0))
            done.append(row.reason is not None or cancel.is_set())
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    ids = torch.tensor([prompt] * sampling.n, dtype=torch.long, device=model.device)
    options: dict[str, Any] = {"do_sample": not sampling.greedy}
    if not sampling.greedy:  # top_k=0: OpenAI has no top-k, transformers defaults to 50
        options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
    rows_in_model = model.get_input_embeddings().weight.shape[0]
    if rows_in_model > len(tokenizer):  # rows another adapter's extended vocabulary added
        options["suppress_tokens"] = list(range(len(tokenizer), rows_in_model))
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    with torch.inference_mode():
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=sampling.max_new_tokens,
            stopping_criteria=StoppingCriteriaList([step]),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(eos),
            **options,
        )
    if not cancel.is_set():  # stopped by the model's own length limit
        for i, row in enumerate(rows):
            if row.reason is None:
                text, reason = row.finish(None, "length")
                emit(Delta(i, text, reason, len(row.ids)))


def embed(model: PreTrainedModel, inputs: list[list[int]]) -> list[list[float]]:
    """Mean of the last hidden state over the tokens, L2-normalised: one input at a time, so
    no padding can leak into the mean."""
    import torch

    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    vectors = []
    with torch.inference_mode():
        for ids in inputs:
            tensor = torch.tensor([ids], dtype=torch.long, device=model.device)
            hidden = decoder(input_ids=tensor).last_hidden_state[0].float().mean(0)
            vectors.append(torch.nn.functional.normalize(hidden, dim=0).tolist())
    return vectors
