"""An SFTTrainer whose loss projects only the completion positions through the LM head.

TRL's fused LM head scores *every* position on devices without Triton (CPU): it tiles the
whole ``(tokens, vocab)`` product, then recomputes it in the backward pass. With a
completion-only loss most positions are prompt or padding (about three quarters in our chat
data), and the LM head of a small model is a fifth of its compute, so on CPU we run the
backbone, keep the positions whose next token is a label, and take one ordinary
``cross_entropy`` over those rows. Same loss, same ``entropy`` / ``mean_token_accuracy`` logs;
CUDA keeps TRL's Triton kernel, and any configuration this path doesn't cover (label smoothing,
custom loss functions, DFT, MoE aux loss, scaled or soft-capped logits) falls back to TRL.
"""

from __future__ import annotations

from typing import Any

# Config attributes that change how hidden states become logits (TRL's fused head honours them).
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def completion_head_trainer_class() -> type[Any]:
    """The SFTTrainer subclass (built lazily: importing TRL costs seconds)."""
    import torch
    from torch.nn.functional import cross_entropy
    from trl import SFTTrainer

    class CompletionHeadSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def _covered(self, model: Any, inputs: dict[str, Any]) -> bool:
            if torch.cuda.is_available() or not {"labels", "attention_mask"} <= inputs.keys():
                return False
            if self.aux_loss_enabled or self.compute_loss_func is not None:
                return False
            if self.label_smoother is not None or self.args.loss_type != "nll":
                return False
            text_config = self._causal_lm(model).config.get_text_config()
            return all(getattr(text_config, a, None) is None for a in _LOGIT_TRANSFORMS)

        def _causal_lm(self, model: Any) -> Any:
            unwrapped = self.accelerator.unwrap_model(model)
            get_base = getattr(unwrapped, "get_base_model", None)
            return get_base() if get_base is not None else unwrapped

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if return_outputs or not self._covered(model, inputs):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if model.training else "eval"
            causal = self._causal_lm(model)
            labels = inputs["labels"]
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            hidden = causal.base_model(**forward, use_cache=False).last_hidden_state
            targets = labels[:, 1:]
            mask = targets != -100
            logits = causal.get_output_embeddings()(hidden[:, :-1][mask]).float()
            picked = targets[mask]
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = cross_entropy(logits, picked, reduction="sum") / torch.as_tensor(count).clamp(
                min=1
            )
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            self._log_token_metrics(mode, inputs, logits.detach(), picked)
            return loss

        def _log_token_metrics(
            self, mode: str, inputs: dict[str, Any], logits: Any, picked: Any
        ) -> None:
            """The entropy / accuracy / token-count logs TRL's compute_loss keeps."""
            gather = self.accelerator.gather_for_metrics
            with torch.no_grad():
                logp = torch.log_softmax(logits, dim=-1)
                valid = gather(torch.tensor(picked.numel(), device=logits.device)).sum()
                entropy = gather(-(logp.exp() * logp).sum()).sum()
                correct = gather((logits.argmax(-1) == picked).sum()).sum()
            n = max(int(valid.item()), 1)
            self._metrics[mode]["entropy"].append(entropy.item() / n)
            self._metrics[mode]["mean_token_accuracy"].append(correct.item() / n)
            if mode == "train":
                seen = gather(inputs["attention_mask"].sum()).sum().item()
                self._total_train_tokens += seen // self._tp_size
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return CompletionHeadSFTTrainer
