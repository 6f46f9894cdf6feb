"""ProFitConfig and ProFitSFTTrainer: TRL's SFTTrainer with a token-selection rule on its fused LM head.

Switching from TRL is two lines:

    from profit_rl import ProFitConfig as SFTConfig, ProFitSFTTrainer as SFTTrainer
    trainer = SFTTrainer(model=..., args=SFTConfig(..., selection="profit", tau=0.1), train_dataset=...)

Everything else (data preparation, packing, PEFT, DeepSpeed/FSDP, checkpoints, TRL's own metrics) is TRL's.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from profit_rl.core.chat import end_of_turn_ids as chat_end_of_turn_ids
from profit_rl.core.io import InputError

from .cards import CardMixin
from .losses import SELECTIONS, protect, selection_stats, token_weights, validate_selection
from .protected import PROTECTED_KEY, ProtectingCollator, TokenText, protected_token_mask, validate_protected_strings

logger = logging.getLogger(__name__)

# A training run whose rule keeps under this fraction of the supervised tokens, over each optimizer step's whole
# accumulation window and all ranks, for this many optimizer steps in a row (or for every step of a shorter run),
# stops with `EmptySelectionError` unless `allow_empty_selection` is set.
EMPTY_SELECTION_FRACTION = 0.01
EMPTY_SELECTION_STEPS = 3


class EmptySelectionError(InputError, RuntimeError):
    """The selection rule kept (almost) no token for several optimizer steps: the run would train nothing. A user
    error (tau, the model or the data), so the CLIs print it as one line."""


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
            The end-of-turn preset of protection: always keep (weight 1) the end-of-turn token(s), i.e. the chat
            format's end of turn (`<|im_end|>` for ChatML and Qwen3; see `profit_rl.core.chat`), the tokenizer's EOS
            and the generation config's EOS ids. A base model has never seen the chat template's end token, gives it
            p ~ 0, and ProFit drops it in every row, so the SFT model never learns to stop. A departure from the
            paper's rule, which has no exception, so off by default; the trainer warns once when every end-of-turn
            token of a batch is dropped.
        protected_strings (`list[str]`, *optional*, defaults to `[]`):
            Strings whose tokens always keep weight 1 under every selection rule, wherever they occur in a supervised
            completion (for example `["\\boxed"]`, a format marker the model must learn though it gives it a low p).
            Each occurrence is found in the decoded text of the tokenised row and every token overlapping it is
            protected, so a string matches whatever tokens it became in context (see `profit_rl.protected`). A
            departure from the paper's rule, which has no exception: empty by default. Protected tokens count as
            kept in the `profit/*` metrics. `profit-rl inspect` lists candidates: tokens nearly every reference
            contains that the rule drops in most rows.
        allow_empty_selection (`bool`, *optional*, defaults to `False`):
            Train on when the rule keeps (almost) no token. By default a run whose rule keeps under 1% of the
            supervised tokens of each optimizer step (over the accumulation window and all ranks) for 3 steps in a row
            (or for every step of a shorter run) stops with an `EmptySelectionError` naming tau and the kept fraction:
            a model that gives every reference token p <= tau (a random model, or one far from its data) otherwise
            trains nothing, silently.

    `loss_type="dft"` (TRL's DFT loss) is the rule `selection="dft"`: it sets it when `selection` is `"all"` or
    `"dft"`, and is an error with any other rule. [`ProFitSFTTrainer`] also takes a plain [`trl.SFTConfig`]: it then
    trains exactly as TRL's trainer (its loss is TRL's, `loss_type="nll"` being the rule `"all"` and `"dft"` the
    rule `"dft"`) and logs the `profit/*` metrics of that rule.
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

    allow_empty_selection: bool = field(
        default=False,
        metadata={"help": "Train on when the rule keeps under 1 in 100 supervised tokens for 3 optimizer steps in a "
                  "row; by default the run then stops with an error naming tau and the kept fraction."},
    )

    def __post_init__(self):
        # Fail at config time, before any model is loaded.
        validate_selection(self.selection, self.tau, self.tau_high, self.top_ratio)
        validate_protected_strings(self.protected_strings)
        if self.loss_type == "dft" and self.selection in ("all", "dft"):
            # TRL's DFT is this rule; the rule weights the NLL, so TRL's loss must not weight it a second time
            self.selection, self.loss_type = "dft", "nll"
        if self.loss_type != "nll":
            raise ValueError(
                f"ProFitConfig needs loss_type='nll' (got {self.loss_type!r} with selection={self.selection!r}): the "
                "selection rule weights the NLL. For DFT use selection='dft' (loss_type='dft' sets it when selection "
                "is 'all')."
            )
        if self.label_smoothing_factor:
            raise ValueError("ProFitConfig does not support label smoothing: it needs full logits, ProFit never builds them.")
        super().__post_init__()


def end_of_turn_ids(tokenizer, model) -> list[int]:
    """Token ids that end an assistant turn, in id order: the chat format's end of turn, the tokenizer's EOS and the
    generation config's EOS ids (core.chat.end_of_turn_ids; the EOS ids alone for a tokenizer with no chat format)."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's text tokenizer
    return sorted(chat_end_of_turn_ids(tokenizer, getattr(model, "generation_config", None)))


@dataclass(frozen=True)
class TRLRule:
    """The rule a plain `trl.SFTConfig` trains with: TRL's own loss, read as a selection rule (`loss_type` "nll" is
    `"all"`, "dft" is `"dft"`), with every `ProFitConfig` field the trainer reads at its default."""

    selection: str
    tau: float = 0.1
    tau_high: float | None = None
    top_ratio: float = 0.2
    selection_seed: int | None = None
    keep_end_of_turn: bool = False
    protected_strings: tuple = ()
    allow_empty_selection: bool = False

    @classmethod
    def of(cls, args: SFTConfig) -> "TRLRule":
        """The rule of a plain SFTConfig: `loss_type` "nll" trains every token (`"all"`), "dft" is the DFT rule; any
        other loss type is a ValueError."""
        if args.loss_type not in ("nll", "dft"):
            raise ValueError(f"ProFitSFTTrainer: SFTConfig loss_type {args.loss_type!r} is no selection rule "
                             "(TRL 1.16 has 'nll' and 'dft')")
        return cls(selection="all" if args.loss_type == "nll" else "dft")


def describe_rule(rule) -> str:
    """One line: the rule, its parameters and its exceptions, as the trainer logs it once."""
    text = f"selection={rule.selection!r}"
    if rule.selection in ("profit", "inverse", "band"):
        text += f", tau={rule.tau}" + (f", tau_high={rule.tau_high}" if rule.selection == "band" else "")
    if rule.selection in ("entropy", "random"):
        text += f", top_ratio={rule.top_ratio}"
    text += f": {SELECTIONS[rule.selection]}"
    protected = [*(["the end-of-turn token(s)"] if rule.keep_end_of_turn else []), *map(repr, rule.protected_strings)]
    if protected:
        text += "; always kept: " + ", ".join(protected)
    return text


class _EmptySelectionGuard(TrainerCallback):
    """Checks, at the end of every optimizer step, that the rule kept more than (almost) no token."""

    def __init__(self, trainer: "ProFitSFTTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._step_sums, self.trainer._empty_streak = None, []

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._check_selection_not_empty(state.max_steps)


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
        # A plain SFTConfig: TRL's own loss already is the rule; the weights only feed the metrics and the guard.
        self.apply = isinstance(trainer.args, ProFitConfig)

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
        if self.apply:
            outputs.log_probs = outputs.log_probs * weights.to(outputs.log_probs.dtype)
        return outputs

    def __getattr__(self, name):
        return getattr(self.model, name)


class ProFitSFTTrainer(CardMixin, SFTTrainer):
    """[`trl.SFTTrainer`] whose loss keeps only the tokens chosen by `args.selection` (see [`ProFitConfig`]).

    With a plain [`trl.SFTConfig`] (or TrainingArguments, or none) it trains exactly as TRL's trainer, whose loss is
    then the rule `"all"` (`loss_type="nll"`) or `"dft"`; it logs once which rule it uses. A run whose rule keeps
    (almost) no token stops with an [`EmptySelectionError`] (see `ProFitConfig.allow_empty_selection`). Every saved
    folder carries a model card naming the rule, tau, the protected tokens and the normaliser (`profit_rl.cards`); set
    `trainer.card_info` (a `profit_rl.cards.CardInfo`) to name the data and the recipe in it.

    The loss is `-sum(w * log p) / num_items_in_batch` on TRL's fused LM head (no `(batch, seq, vocab)` logits), so
    gradient accumulation and multi-GPU runs give the same update as one large batch. Per step it logs, next to TRL's
    metrics: `profit/kept_fraction`, `profit/p_kept_mean`, `profit/p_dropped_mean`, `profit/weight_mass`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # TRL turns no args, or TrainingArguments, into an SFTConfig
        if isinstance(self.args, ProFitConfig):
            self.rule = self.args  # read live: a rule changed on trainer.args applies from the next batch
            if self.compute_loss_func is not None:
                raise ValueError("ProFitSFTTrainer computes its own loss; compute_loss_func is not supported.")
            pc = getattr(self.accelerator, "parallelism_config", None)
            if pc is not None and getattr(pc, "sp_enabled", False) and pc.sp_backend == "deepspeed":
                raise ValueError("ProFitSFTTrainer does not support DeepSpeed sequence parallelism yet.")
            source = "ProFitConfig"
        else:
            self.rule = TRLRule.of(self.args)
            source = f"a plain {type(self.args).__name__} (loss_type={self.args.loss_type!r}): TRL's own loss"
        if self.accelerator.is_main_process:
            logger.info("ProFitSFTTrainer: %s, from %s", describe_rule(self.rule), source)
        self._end_of_turn_ids = end_of_turn_ids(self.processing_class, self.model)
        self._end_of_turn_checked = False
        self._token_text = None
        if self.rule.protected_strings:
            self._token_text = TokenText(getattr(self.processing_class, "tokenizer", self.processing_class))
            self.data_collator = ProtectingCollator(self.data_collator, self._token_text, self.rule.protected_strings)
        seed = self.args.seed if self.rule.selection_seed is None else self.rule.selection_seed
        self._selection_generator = torch.Generator(device="cpu").manual_seed(seed + self.accelerator.process_index)
        self._selection_sums: dict[str, torch.Tensor] = {}  # per mode: selection_stats summed since the last log
        self._step_sums: torch.Tensor | None = None  # training selection_stats since the last optimizer step
        self._empty_streak: list[tuple[float, float]] = []  # (supervised, kept) of the last steps that kept ~nothing
        self.add_callback(_EmptySelectionGuard(self))

    def selection_weights(
        self, outputs, next_tokens: torch.Tensor | None = None, protected: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Weights of the configured rule for one fused-head output, protected tokens set to 1; records the metrics.

        `next_tokens` are the labels the head scored and `protected` the `protected_strings` mask, both aligned with
        `outputs.log_probs`.
        """
        args = self.rule
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
            if self.rule.keep_end_of_turn:
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
                    f"selection={self.rule.selection!r} drops every end-of-turn token of the first batch (the model "
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
        if mode == "train":
            self._step_sums = stats if self._step_sums is None else self._step_sums + stats

    def _check_selection_not_empty(self, max_steps: int) -> None:
        """Called by every rank at the end of every optimizer step: stop the run, on every rank at the same step, when
        the rule has kept (almost) no token of the step's accumulation window on all ranks for several steps."""
        sums, self._step_sums = self._step_sums, None
        rule = self.rule
        if rule.allow_empty_selection or rule.selection in ("all", "dft"):  # those two keep every supervised token
            return
        local = torch.zeros(2, device=self.accelerator.device) if sums is None else sums[[0, 2]].float()
        # one collective per optimizer step, joined by every rank, so every rank reaches the same verdict
        supervised, kept = self.accelerator.gather(local.to(self.accelerator.device)).view(-1, 2).sum(0).tolist()
        if supervised == 0:  # nothing to supervise (the data's doing, not the rule's): no verdict
            return
        if kept >= EMPTY_SELECTION_FRACTION * supervised:
            self._empty_streak = []
            return
        self._empty_streak.append((supervised, kept))
        if len(self._empty_streak) < max(1, min(EMPTY_SELECTION_STEPS, max_steps)):
            return
        supervised = sum(s for s, _ in self._empty_streak)
        kept = sum(k for _, k in self._empty_streak)
        raise EmptySelectionError(self._empty_selection_message(len(self._empty_streak), kept, supervised))

    def _empty_selection_message(self, steps: int, kept: float, supervised: float) -> str:
        rule = self.rule
        what = {
            "profit": f"gives (almost) every reference token p <= tau={rule.tau}. Lower tau",
            "inverse": f"gives (almost) every reference token p > tau={rule.tau}. Raise tau",
            "band": f"gives (almost) no reference token tau={rule.tau} < p <= tau_high={rule.tau_high}. Widen the band",
        }.get(rule.selection, f"keeps (almost) nothing with top_ratio={rule.top_ratio}. Raise top_ratio")
        return (
            f"selection={rule.selection!r} (tau={rule.tau}) kept {kept / supervised:.2%} of the supervised tokens "
            f"({int(kept)} of {int(supervised)}) over the last {steps} optimizer step(s), all ranks and accumulation "
            f"steps together: the run trains (almost) nothing. The model {what}, check that the model matches the data "
            "(its tokenizer and chat template; a randomly initialised model gives p ~ 1/vocab), or train every token "
            "with selection='all'. Set allow_empty_selection=True (--allow_empty_selection true) to train on anyway."
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's `log`, with the `profit/*` selection metrics (kept fraction, mean p of kept and dropped tokens,
        weight mass) gathered over all ranks since the last log."""
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
        """TRL's SFT loss through `_SelectedForward`, which weights the per-token log-probs by the selection rule (with
        a plain SFTConfig, TRL's loss already is the rule: the weights only feed the metrics). Protected tokens are
        found here for a batch that did not come through the trainer's collator."""
        protected = inputs.pop(PROTECTED_KEY, None)  # not a model input
        if protected is None and self.rule.protected_strings:
            # a batch that did not come through the trainer's collator (a caller's own): find the strings here
            ids, labels = inputs["input_ids"].cpu(), inputs["labels"].cpu()
            protected = protected_token_mask(self._token_text, ids, labels, self.rule.protected_strings)
        return super().compute_loss(
            _SelectedForward(model, self, protected),
            inputs,
            return_outputs=return_outputs,
            num_items_in_batch=num_items_in_batch,
        )
