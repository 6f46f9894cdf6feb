"""ProFitConfig and ProFitSFTTrainer: TRL's SFTTrainer with a token-selection rule on its fused LM head.

Switching from TRL is two lines:

    from profit_rl import ProFitConfig as SFTConfig, ProFitSFTTrainer as SFTTrainer
    trainer = SFTTrainer(model=..., args=SFTConfig(..., selection="profit", tau=0.1), train_dataset=...)

Everything else (data preparation, packing, PEFT, DeepSpeed/FSDP, checkpoints, TRL's own metrics) is TRL's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from trl import SFTConfig, SFTTrainer

from .losses import SELECTIONS, selection_stats, token_weights, validate_selection


@dataclass
class ProFitConfig(SFTConfig):
    r"""
    Configuration for [`ProFitSFTTrainer`]: every [`trl.SFTConfig`] field, plus the token-selection rule.

    Parameters:
        selection (`str`, *optional*, defaults to `"profit"`):
            Which ground-truth tokens carry loss, decided per token from the model's own detached probability p:
            `"profit"` keeps p > tau (the paper's method); `"all"` is standard SFT; `"dft"` weights every token by p;
            `"entropy"` keeps the `top_ratio` highest-entropy tokens of each micro-batch; `"inverse"` keeps p <= tau,
            `"band"` keeps tau < p <= tau_high and `"random"` keeps each token with probability `top_ratio` (the
            paper's ablations and a control).
        tau (`float`, *optional*, defaults to `0.1`):
            Probability threshold of `"profit"`, `"inverse"` and `"band"`; in (0, 1). The paper's default is 0.1.
        tau_high (`float` or `None`, *optional*, defaults to `None`):
            Upper threshold of `"band"`; must satisfy tau < tau_high <= 1.
        top_ratio (`float`, *optional*, defaults to `0.2`):
            Fraction of supervised tokens kept by `"entropy"` and `"random"`; in (0, 1].
        selection_seed (`int` or `None`, *optional*, defaults to `None`):
            Seed of the `"random"` rule's draws (offset by the process index); `None` uses `seed`.
        keep_end_of_turn (`bool`, *optional*, defaults to `False`):
            Always keep (weight 1) the end-of-turn token(s): the tokenizer's EOS, the generation config's EOS ids and
            `<|im_end|>`. A base model has never seen the chat template's end token, gives it p ~ 0, and ProFit drops
            it in every row, so the SFT model never learns to stop. The paper's rule has no such exception, so this
            is off by default; the trainer warns once when every end-of-turn token of a batch is dropped.
    """

    selection: str = field(
        default="profit",
        metadata={"help": "Token-selection rule.", "choices": list(SELECTIONS)},
    )
    tau: float = field(default=0.1, metadata={"help": "Probability threshold of profit/inverse/band, in (0, 1)."})
    tau_high: float | None = field(default=None, metadata={"help": "Upper threshold of band (tau < tau_high <= 1)."})
    top_ratio: float = field(default=0.2, metadata={"help": "Fraction of tokens kept by entropy and random."})
    selection_seed: int | None = field(default=None, metadata={"help": "Seed of the random rule; None uses seed."})
    keep_end_of_turn: bool = field(
        default=False,
        metadata={"help": "Always train the end-of-turn token(s), whatever the rule says. A base model gives "
                  "<|im_end|> p ~ 0, so a p rule drops it in every row and the model never learns to stop. "
                  "Off by default: the paper's rule has no exception (a warning says when it bites)."},
    )

    def __post_init__(self):
        # Fail at config time, before any model is loaded.
        validate_selection(self.selection, self.tau, self.tau_high, self.top_ratio)
        if self.loss_type != "nll":
            raise ValueError(
                f"ProFitConfig needs loss_type='nll' (got {self.loss_type!r}): the selection rule weights the NLL. "
                "For DFT use selection='dft'."
            )
        if self.label_smoothing_factor:
            raise ValueError("ProFitConfig does not support label smoothing: it needs full logits, ProFit never builds them.")
        super().__post_init__()


def end_of_turn_ids(tokenizer, model) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's EOS, the generation config's EOS ids, `<|im_end|>`."""
    ids = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(tokenizer.eos_token_id)
    generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([generation_eos] if isinstance(generation_eos, int) else generation_eos or [])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if hasattr(tokenizer, "convert_tokens_to_ids") else None
    if isinstance(im_end, int) and im_end != getattr(tokenizer, "unk_token_id", None):
        ids.add(im_end)
    return sorted(ids)


class _SelectedForward:
    """Calls the model; on fused-head calls, multiplies the per-token log-probs by the selection weights.

    TRL's `compute_loss` reduces `-log_probs` to `sum / num_items_in_batch`; fed weighted log-probs it computes exactly
    `selection_loss`, while its metrics, DDP scaling and MoE handling stay TRL's own.
    """

    def __init__(self, model, trainer: "ProFitSFTTrainer"):
        self.model, self.trainer = model, trainer

    def __call__(self, *args, **kwargs):
        outputs = self.model(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            # the next-token labels the fused head scored: shifted here unless the caller pre-shifted them
            labels, shift_labels = kwargs.get("labels"), kwargs.get("shift_labels")
            next_tokens = shift_labels if shift_labels is not None else None if labels is None else labels[:, 1:]
            weights = self.trainer.selection_weights(outputs, next_tokens)
            outputs.log_probs = outputs.log_probs * weights.to(outputs.log_probs.dtype)
        return outputs

    def __getattr__(self, name):
        return getattr(self.model, name)


class ProFitSFTTrainer(SFTTrainer):
    """[`trl.SFTTrainer`] whose loss keeps only the tokens chosen by `args.selection` (see [`ProFitConfig`]).

    The loss is `-sum(w * log p) / num_items_in_batch` on TRL's fused LM head (no `(batch, seq, vocab)` logits), so
    gradient accumulation and multi-GPU runs give the same update as one large batch. Per step it logs, next to TRL's
    metrics: `profit/kept_fraction`, `profit/p_kept_mean`, `profit/p_dropped_mean`, `profit/weight_mass`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, ProFitConfig):
            raise TypeError(f"ProFitSFTTrainer needs a ProFitConfig, got {type(self.args).__name__}")
        if self.compute_loss_func is not None:
            raise ValueError("ProFitSFTTrainer computes its own loss; compute_loss_func is not supported.")
        pc = getattr(self.accelerator, "parallelism_config", None)
        if pc is not None and getattr(pc, "sp_enabled", False) and pc.sp_backend == "deepspeed":
            raise ValueError("ProFitSFTTrainer does not support DeepSpeed sequence parallelism yet.")
        self._end_of_turn_ids = end_of_turn_ids(self.processing_class, self.model)
        self._end_of_turn_checked = False
        seed = self.args.seed if self.args.selection_seed is None else self.args.selection_seed
        self._selection_generator = torch.Generator(device="cpu").manual_seed(seed + self.accelerator.process_index)
        self._selection_sums: dict[str, torch.Tensor] = {}  # per mode: selection_stats summed since the last log

    def selection_weights(self, outputs, next_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Weights of the configured rule for one fused-head output; records the selection metrics."""
        args = self.args
        if args.selection == "random":  # drawn on CPU so runs are reproducible across devices
            log_probs, mask = outputs.log_probs.detach().cpu(), outputs.label_mask.cpu()
        else:
            log_probs, mask = outputs.log_probs, outputs.label_mask
        weights = token_weights(
            log_probs,
            mask,
            args.selection,
            tau=args.tau,
            tau_high=args.tau_high,
            entropy=outputs.entropy,
            top_ratio=args.top_ratio,
            generator=self._selection_generator,
        ).to(outputs.log_probs.device)
        if next_tokens is not None and self._end_of_turn_ids and next_tokens.shape == weights.shape:
            weights = self._end_of_turn(weights, next_tokens.to(weights.device), outputs.label_mask)
        self._log_selection(outputs.log_probs, outputs.label_mask, weights)
        return weights

    def _end_of_turn(self, weights, next_tokens, label_mask) -> torch.Tensor:
        ids = torch.tensor(self._end_of_turn_ids, device=next_tokens.device)
        is_end = torch.isin(next_tokens, ids) & label_mask.bool()
        if self.args.keep_end_of_turn:
            return torch.where(is_end, torch.ones_like(weights), weights)
        if not self._end_of_turn_checked and self.model.training and bool(is_end.any()):
            self._end_of_turn_checked = True  # one host sync, on the first batch that has an end token
            if bool((weights[is_end] == 0).all()):
                warnings.warn(
                    f"selection={self.args.selection!r} drops every end-of-turn token of the first batch (the model "
                    "gives them p below tau): the SFT model will not learn to stop. Set keep_end_of_turn=True to "
                    "always train them (a departure from the paper's rule), or check with `profit-rl inspect`.",
                    stacklevel=2,
                )
        return weights

    def _log_selection(self, log_probs, label_mask, weights) -> None:
        # Summed on the device and turned into numbers only in `log`: no host sync in the hot path.
        mode = "train" if self.model.training else "eval"
        stats = selection_stats(log_probs, label_mask, weights)
        sums = self._selection_sums.get(mode)
        self._selection_sums[mode] = stats if sums is None else sums + stats

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        sums = self._selection_sums.pop(mode, None)
        if sums is not None:
            # Gathered here, once per logging step; every rank calls `log`, like TRL's own gathers in compute_loss.
            supervised, p_supervised, kept, p_kept, mass, _ = self.accelerator.gather(sums).view(-1, 6).sum(0).tolist()
            dropped, p_dropped = supervised - kept, p_supervised - p_kept
            prefix = "eval_" if mode == "eval" else ""
            logs[f"{prefix}profit/kept_fraction"] = kept / supervised if supervised else 0.0
            logs[f"{prefix}profit/p_kept_mean"] = p_kept / kept if kept else 0.0
            logs[f"{prefix}profit/p_dropped_mean"] = p_dropped / dropped if dropped else 0.0
            logs[f"{prefix}profit/weight_mass"] = mass / supervised if supervised else 0.0
        super().log(logs, start_time)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return super().compute_loss(
            _SelectedForward(model, self), inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
