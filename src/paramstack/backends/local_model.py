"""Loading an in-process model with its adapters, and turning OpenAI requests into token ids.

Kept apart from the backend so the backend module holds only the request flow; both functions
run on the event loop thread or at startup, never inside a generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramstack.errors import InvalidInput

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def load_with_adapters(
    spec: str, adapters: dict[str, str], device: str, dtype: str
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, PreTrainedTokenizerBase]]:
    """The base, wrapped in one ``PeftModel`` holding every adapter when there are any, its
    tokenizer, and the own tokenizer of each adapter trained with an extended vocabulary.

    Such an adapter's new token rows live in the adapter (PEFT trainable tokens); the shared
    base gets enough embedding rows for the largest vocabulary among them, so several
    adapters with different extensions coexist, each read and written with its own tokenizer.
    """
    from paramstack.llm.base_model import load_causal_lm

    for name, path in adapters.items():  # before the slow part
        if not (Path(path) / "adapter_config.json").is_file():
            raise InvalidInput(
                f"adapter {name!r}: {path} is not a PEFT adapter directory", param="adapters"
            )
    try:
        model, tokenizer = load_causal_lm(spec, dtype=dtype)
        own = _extended_tokenizers(adapters, len(tokenizer))
        rows = max([len(t) for t in own.values()], default=0)
        if rows > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(rows, mean_resizing=False)
        if adapters:
            from peft import PeftModel

            (first, first_path), *rest = adapters.items()
            model = PeftModel.from_pretrained(model, first_path, adapter_name=first)
            for name, path in rest:
                model.load_adapter(path, adapter_name=name)
        model.to(device).eval()
    except ImportError as exc:
        raise InvalidInput(
            f"the transformers backend needs the llm extra (pip install 'paramstack[llm]'): {exc}",
            param="backend",
        ) from exc
    except (OSError, ValueError, RuntimeError) as exc:  # unreadable files, shape mismatches
        raise InvalidInput(f"cannot load model {spec!r}: {exc}", param="model") from exc
    return model, tokenizer, own


def _extended_tokenizers(
    adapters: dict[str, str], base_size: int
) -> dict[str, PreTrainedTokenizerBase]:
    """The tokenizer saved with each adapter, kept where it has more tokens than the base's."""
    from transformers import AutoTokenizer

    own = {}
    for name, path in adapters.items():
        if (Path(path) / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(path)
            if len(tokenizer) > base_size:
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                own[name] = tokenizer
    return own


def _text(message: dict[str, Any]) -> dict[str, str]:
    """A message as chat templates take it: role and plain text (text parts joined)."""
    content = message.get("content")
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            raise InvalidInput("this model takes text content parts only", param="messages")
        content = "".join(str(p.get("text", "")) for p in content)
    role = message.get("role", "user")
    return {"role": "system" if role == "developer" else str(role), "content": content or ""}


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, request: dict[str, Any], chat: bool
) -> list[list[int]]:
    """The token ids of each prompt: the chat template applied to the messages, or each
    text of ``prompt``."""
    if chat:
        import jinja2

        messages = [_text(m) for m in request.get("messages") or []]
        try:
            encoded = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True
            )
        except jinja2.TemplateError as exc:
            raise InvalidInput(f"the chat template refused the messages: {exc}") from exc
        prompts = [list(encoded["input_ids"])]
    else:
        raw = request.get("prompt")
        texts = [raw] if isinstance(raw, str) else list(raw or [])
        prompts = [list(tokenizer(t)["input_ids"]) for t in texts]
    if not prompts or not all(prompts):
        raise InvalidInput("the prompt is empty", param="prompt")
    return prompts
