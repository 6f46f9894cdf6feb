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

from .losses import SELECTIONS, protect, selection_stats, token_weights, validate_selection
from .protected import PROTECTED_KEY, ProtectingCollator, TokenText, protected_token_mask, validate_protected_strings


@dataclass
class ProFitConfig(SFTConfig):
    r"""
    Configuration for [`ProFitSFTTrainer`]: every [`trl.SFTConfig`] field, plus the token-selection rule.

    Parameters:
        selection (`str`, *optional*, defaults to `"profit"`):
            Which ground-truth tokens carry loss, decided per token from the model's own detached probability p:
            `"profit"` keeps p > tau (the paper's method); `"all"` is standard SFT; `"dft"` weights every token by p;
            `"entropy"` keeps the `top_ratio` highest-entropy supervised tokens of each micro-batch, all its sequences
            pooled (the gate of arXiv 2506.01939 applied to SFT; the reference code has no entropy rule);
            `"inverse"` keeps p <= tau, `"band"` keeps tau < p <= tau_high and `"random"` keeps each token with
            probability `top_ratio` (the reference's `random` with `prob_threshold` q drops each with probability q:
            it is `top_ratio` = 1 - q). The loss divides by all supervised tokens under every rule, in evaluation too
            (per eval batch there, since no accumulation window exists).
        tau (`float`, *optional*, defaults to `0.1`):
            Probability threshold of `"profit"`, `"inverse"` and `"band"`; in (0, 1). The paper's default is 0.1.
        tau_high (`float` or `None`, *optional*, defaults to `None`):
            Upper threshold of `"band"`; must satisfy tau < tau_high <= 1.
        top_ratio (`float`, *optional*, defaults to `0.2`):
            Fraction of supervised tokens kept by `"entropy"` (exactly, per micro-batch) and `"random"` (in
            expectation); in (0, 1].
        selection_seed (`int` or `None`, *optional*, defaults to `None`):
            Seed of the `"random"` rule's draws (offset by the process index); `None` uses `seed`.
        keep_end_of_turn (`bool`, *optional*, defaults to `False`):
            The end-of-turn preset of protection: always keep (weight 1) the end-of-turn token(s), i.e. the
            tokenizer's EOS, the generation config's EOS ids and `<|im_end|>`. A base model has never seen the chat
            template's end token, gives it p ~ 0, and ProFit drops it in every row, so the SFT model never learns to
            stop. A departure from the paper's rule, which has no exception, so off by default; the trainer warns once
            when every end-of-turn token of a batch is dropped.
        protected_strings (`list[str]`, *optional*, defaults to `[]`):
            Strings whose tokens always keep weight 1 under every selection rule, wherever they occur in a supervised
            completion (for example `["\\boxed"]`, a format marker the model must learn though it gives it a low p).
            Each occurrence is found in the decoded text of the tokenised row and every token overlapping it is
            protected, so a string matches whatever tokens it became in context (see `profit_rl.protected`). A
            departure from the paper's rule, which has no exception: empty by default. Protected tokens count as
            kept in the `profit/*` metrics. `profit-rl inspect` lists candidates: tokens nearly every reference
            contains that the rule drops in most rows.
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Empty output_dir and train afresh when it holds another run (one made from other inputs, "
                  "or a finished one). Without it, such a folder is refused (docs/reruns.md)."},
    )
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
    protected_strings: list[str] = field(
        default_factory=list,
        metadata={"help": "Strings whose tokens always keep weight 1 under every rule (e.g. \\boxed), matched in "
                  "each tokenised completion. A departure from the paper's rule; empty by default."},
    )

    def __post_init__(self):
        # Fail at config time, before any model is loaded.
        validate_selection(self.selection, self.tau, self.tau_high, self.top_ratio)
        validate_protected_strings(self.protected_strings)
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
    """The model as TRL's `SFTTrainer.compute_loss` calls it, with the selection weights applied to its log-probs.

    What it relies on, in trl 1.16 (`trl/trainer/sft_trainer.py`, `SFTTrainer.compute_loss`, the branch without
    `compute_loss_func`, label smoothing or DeepSpeed sequence parallelism, which `ProFitSFTTrainer` rejects):
    - it calls `model(**inputs, fused_lm_head=True)`, the forward that `trl.trainer.utils.add_fused_lm_head` installs;
      that returns a `trl.trainer.utils.FusedCausalLMOutput` whose `log_probs`, `entropy` and `label_mask` hold one
      entry per next-token label: shape (batch, seq - 1) from `labels`, or (batch, seq) from pre-shifted
      `shift_labels`, zero where the label is -100;
    - it reduces the loss as `-outputs.log_probs.sum() / num_items_in_batch` (the count of `outputs.label_mask` when
      `num_items_in_batch` is None), and reads `outputs.entropy`, `outputs.is_top1` and `outputs.label_mask` only for
      its metrics.
    Fed weighted log-probs, that reduction is `losses.selection_loss`; the tests check the trainer against it.
    """

    def __init__(self, model, trainer: "ProFitSFTTrainer", protected: torch.Tensor | None = None):
        self.model, self.trainer, self.protected = model, trainer, protected

    def __call__(self, *args, **kwargs):
        outputs = self.model(*args, **kwargs)
        if not kwargs.get("fused_lm_head"):  # a full-logits forward (TRL's `return_outputs`): nothing to weight
            return outputs
        # The next-token labels the fused head scored, aligned with its output.
        if kwargs.get("shift_labels") is not None:  # pre-shifted (context parallelism)
            next_tokens = kwargs["shift_labels"]
            if self.protected is not None:
                raise ValueError("protected_strings does not support context parallelism (pre-shifted labels)")
            protected = None
        else:  # the fused head scores labels[:, 1:]: the same shift for the mask
            next_tokens = kwargs["labels"][:, 1:]
            protected = None if self.protected is None else self.protected[:, 1:]
        weights = self.trainer.selection_weights(outputs, next_tokens, protected)
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
        self._token_text = None
        if self.args.protected_strings:
            self._token_text = TokenText(getattr(self.processing_class, "tokenizer", self.processing_class))
            self.data_collator = ProtectingCollator(self.data_collator, self._token_text, self.args.protected_strings)
        seed = self.args.seed if self.args.selection_seed is None else self.args.selection_seed
        self._selection_generator = torch.Generator(device="cpu").manual_seed(seed + self.accelerator.process_index)
        self._selection_sums: dict[str, torch.Tensor] = {}  # per mode: selection_stats summed since the last log

    def selection_weights(
        self, outputs, next_tokens: torch.Tensor | None = None, protected: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Weights of the configured rule for one fused-head output, protected tokens set to 1; records the metrics.

        `next_tokens` are the labels the head scored and `protected` the `protected_strings` mask, both aligned with
        `outputs.log_probs`.
        """
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
        label_mask = outputs.label_mask
        is_end = self._end_of_turn_mask(next_tokens, label_mask)
        if args.keep_end_of_turn and is_end is not None:
            protected = is_end if protected is None else protected.to(is_end.device) | is_end
        if protected is not None:
            if protected.shape != weights.shape:
                raise ValueError(
                    f"protected tokens: mask of shape {tuple(protected.shape)} for log-probs of shape "
                    f"{tuple(weights.shape)}; prompt-learning PEFT shifts the labels and is not supported with "
                    "keep_end_of_turn or protected_strings"
                )
            weights = protect(weights, protected, label_mask)
        if is_end is not None and not args.keep_end_of_turn:
            self._warn_if_end_of_turn_dropped(weights, is_end)
        self._log_selection(outputs.log_probs, label_mask, weights)
        return weights

    def _end_of_turn_mask(self, next_tokens, label_mask) -> torch.Tensor | None:
        """Where the scored label is an end-of-turn token; None when there are no labels to read."""
        if next_tokens is None or not self._end_of_turn_ids:
            return None
        if next_tokens.shape != label_mask.shape:
            if self.args.keep_end_of_turn:
                raise ValueError(
                    f"keep_end_of_turn: labels of shape {tuple(next_tokens.shape)} for log-probs of shape "
                    f"{tuple(label_mask.shape)}; prompt-learning PEFT shifts the labels and is not supported"
                )
            return None
        ids = torch.tensor(self._end_of_turn_ids, device=label_mask.device)
        return torch.isin(next_tokens.to(label_mask.device), ids) & label_mask.bool()

    def _warn_if_end_of_turn_dropped(self, weights, is_end) -> None:
        if not self._end_of_turn_checked and self.model.training and bool(is_end.any()):
            self._end_of_turn_checked = True  # one host sync, on the first batch that has an end token
            if bool((weights[is_end] == 0).all()):
                warnings.warn(
                    f"selection={self.args.selection!r} drops every end-of-turn token of the first batch (the model "
                    "gives them p below tau): the SFT model will not learn to stop. Set keep_end_of_turn=True to "
                    "always train them (a departure from the paper's rule), or check with `profit-rl inspect`.",
                    stacklevel=2,
                )

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
        protected = inputs.pop(PROTECTED_KEY, None)  # not a model input
        if protected is None and self.args.protected_strings:
            # a batch that did not come through the trainer's collator (a caller's own): find the strings here
            ids, labels = inputs["input_ids"].cpu(), inputs["labels"].cpu()
            protected = protected_token_mask(self._token_text, ids, labels, self.args.protected_strings)
        return super().compute_loss(
            _SelectedForward(model, self, protected),
            inputs,
            return_outputs=return_outputs,
            num_items_in_batch=num_items_in_batch,
        )
