"""In-process transformers backend: a local model directory, GGUF file or hub id, with PEFT
LoRA adapters sharing one copy of the base weights.

The model loads once, when the gateway builds its model table at startup (a failure stops the
start with a clear message, instead of failing the first caller). torch and transformers are
imported only then, so a gateway with no such model starts without them. Generation runs in a
worker thread; ``max_concurrency`` generations (default 1) run at once and the rest queue
(``AdapterGate``), so a small machine serves requests one after another instead of thrashing
its cores. A client that goes away stops its generation at the next token. Token counts are
the model tokenizer's: the prompt's ids and the generated ids (the end token included).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any

import anyio

from paramstack.backends.adapter_gate import AdapterGate
from paramstack.backends.local_generation import Delta, Sampling, embed, generate
from paramstack.backends.local_model import load_with_adapters, prompt_ids
from paramstack.backends.openai_shapes import Shaper, embeddings_body
from paramstack.backends.protocol import BackendConfig, ChatChunk, ChatResult, Usage, backend
from paramstack.errors import InvalidInput, ParamstackError

_END = object()  # the worker thread is done (its error, if any, is on the future)


class GenerationFailed(ParamstackError):
    default_code = "generation_failed"


@backend("transformers")
class TransformersLocal:
    kind = "transformers"
    capabilities = frozenset({"chat", "completions", "embeddings"})

    def __init__(self, config: BackendConfig) -> None:
        spec = config.option("model")
        if not spec:
            raise InvalidInput(
                "a transformers backend needs model (a directory, .gguf file or hub id)",
                param="model",
            )
        self.spec = str(spec)
        self.adapters: dict[str, str] = dict(config.option("adapters", ()))
        device, dtype = config.option("device", "cpu"), config.option("dtype", "float32")
        threads = config.option("threads")
        if threads:  # process-wide: on a shared small machine fewer threads stall less
            import torch

            torch.set_num_threads(int(threads))
        self.model, self.tokenizer, self.own_tokenizers = load_with_adapters(
            self.spec, self.adapters, device, dtype
        )
        self.context: int | None = getattr(self.model.config, "max_position_embeddings", None)
        limit = int(config.option("max_concurrency", 1))
        self.gate = AdapterGate(limit, self._switch)
        self._pool = ThreadPoolExecutor(limit, thread_name_prefix="paramstack-llm")
        self._count = threading.Lock()
        self.generating = 0  # model calls running now, and the most ever at once
        self.peak_generating = 0

    def __repr__(self) -> str:
        return f"TransformersLocal({self.spec!r}, adapters={sorted(self.adapters)})"

    def _switch(self, adapter: str | None) -> None:
        """Make ``adapter`` the active one (None: the base alone); only called by the gate
        while no generation runs."""
        if not self.adapters:
            return
        if adapter is None:
            self.model.base_model.disable_adapter_layers()
        else:
            self.model.set_adapter(adapter, inference_mode=True)
            self.model.base_model.enable_adapter_layers()

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)  # running ones end with their request

    async def chat(self, request: dict[str, Any]) -> ChatResult:
        return await self._whole(request, chat=True)

    async def completions(self, request: dict[str, Any]) -> ChatResult:
        return await self._whole(request, chat=False)

    def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        return self._chunks(request, chat=True)

    def stream_completions(self, request: dict[str, Any]) -> AsyncIterator[ChatChunk]:
        return self._chunks(request, chat=False)

    async def embeddings(self, request: dict[str, Any]) -> ChatResult:
        inputs = self._embedding_inputs(request.get("input"))
        if request.get("dimensions") not in (None, self.model.config.hidden_size):
            raise InvalidInput(
                f"this model's embeddings have {self.model.config.hidden_size} dimensions",
                param="dimensions",
            )
        async with self.gate.slot(None):
            vectors = await self._in_thread(embed, self.model, inputs)
        usage = Usage(sum(len(ids) for ids in inputs))
        encoding = str(request.get("encoding_format") or "float")
        body = embeddings_body(str(request.get("model")), vectors, usage, encoding)
        return ChatResult(body, usage)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await future
        finally:  # never give the slot back while the model still runs
            with anyio.CancelScope(shield=True):
                await asyncio.wait([future])

    def _embedding_inputs(self, raw: Any) -> list[list[int]]:
        single = isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int))
        items = [raw] if single else list(raw or [])
        vocab = len(self.tokenizer)
        out = []
        for item in items:
            ids = self.tokenizer(item)["input_ids"] if isinstance(item, str) else list(item)
            if not ids or not all(isinstance(i, int) and 0 <= i < vocab for i in ids):
                raise InvalidInput(
                    f"each input must be non-empty text or token ids in [0, {vocab})",
                    param="input",
                )
            if self.context is not None and len(ids) > self.context:
                raise InvalidInput(
                    f"an input of {len(ids)} tokens exceeds the model's context of "
                    f"{self.context} tokens",
                    code="context_length_exceeded",
                    param="input",
                )
            out.append(ids)
        return out

    def _check_context(self, prompts: list[list[int]], sampling: Sampling) -> None:
        longest = max(len(p) for p in prompts)
        if self.context is not None and longest + sampling.max_new_tokens > self.context:
            raise InvalidInput(
                f"the prompt ({longest} tokens) plus max_tokens ({sampling.max_new_tokens}) "
                f"exceeds the model's context of {self.context} tokens",
                code="context_length_exceeded",
                param="max_tokens",
            )

    async def _whole(self, request: dict[str, Any], *, chat: bool) -> ChatResult:
        texts: dict[int, list[str]] = {}
        reasons: dict[int, str] = {}
        usage = Usage(0)
        async with aclosing(self._events(request, chat)) as events:
            async for index, delta, final in events:
                if delta is not None:
                    texts.setdefault(index, []).append(delta.text)
                    if delta.finish_reason:
                        reasons[index] = delta.finish_reason
                if final is not None:
                    usage = final
        joined = {i: "".join(parts) for i, parts in texts.items()}
        body = Shaper(chat, str(request.get("model"))).whole(joined, reasons, usage)
        return ChatResult(body, usage)

    async def _chunks(self, request: dict[str, Any], *, chat: bool) -> AsyncIterator[ChatChunk]:
        shaper = Shaper(chat, str(request.get("model")))
        async with aclosing(self._events(request, chat)) as events:
            async for index, delta, final in events:
                if final is not None:
                    yield ChatChunk(shaper.usage(final), final)
                elif delta is None:
                    if chat:
                        yield ChatChunk(shaper.role(index))
                else:
                    yield ChatChunk(shaper.delta(index, delta.text, delta.finish_reason))

    async def _events(
        self, request: dict[str, Any], chat: bool
    ) -> AsyncGenerator[tuple[int, Delta | None, Usage | None]]:
        """(choice index, delta, None) per delta, (index, None, None) when a choice starts,
        and last (0, None, usage). Prompts of a list run one after another."""
        adapter = str(request.get("model"))
        active = adapter if adapter in self.adapters else None
        tokenizer = self.own_tokenizers.get(adapter, self.tokenizer)
        prompts = prompt_ids(tokenizer, request, chat)
        sampling = Sampling.from_request(request)
        self._check_context(prompts, sampling)
        completion = 0
        for number, prompt in enumerate(prompts):
            first = number * sampling.n
            job = self._generate(active, tokenizer, prompt, sampling)
            async with aclosing(job) as deltas:
                async for delta in deltas:
                    if delta is None:
                        for row in range(sampling.n):
                            yield first + row, None, None
                        continue
                    completion += delta.tokens
                    yield first + delta.row, delta, None
        yield 0, None, Usage(sum(len(p) for p in prompts), completion)

    async def _generate(
        self, adapter: str | None, tokenizer: Any, prompt: list[int], sampling: Sampling
    ) -> AsyncGenerator[Delta | None]:
        """None once the generation has a slot, then its deltas as the thread makes them."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        async with self.gate.slot(adapter):
            job = loop.run_in_executor(
                self._pool, self._run, tokenizer, prompt, sampling, emit, cancel
            )
            try:
                yield None
                while (item := await queue.get()) is not _END:
                    yield item
                await job
            except ParamstackError:
                raise
            except Exception as exc:
                raise GenerationFailed(f"generation failed: {type(exc).__name__}") from exc
            finally:
                cancel.set()  # the client went away, or we are done: stop at the next token
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([job])

    def _run(
        self,
        tokenizer: Any,
        prompt: list[int],
        sampling: Sampling,
        emit: Callable[[Any], None],
        cancel: Any,
    ) -> None:
        with self._count:
            self.generating += 1
            self.peak_generating = max(self.peak_generating, self.generating)
        try:
            generate(self.model, tokenizer, prompt, sampling, emit, cancel)
        finally:
            with self._count:
                self.generating -= 1
            emit(_END)
