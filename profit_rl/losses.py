"""Token-selection rules for SFT, as pure tensor functions (no trainer, no model).

ProFit (arXiv 2601.09195) keeps the cross-entropy of a ground-truth token only where the current model already gives
it probability p > tau, on the premise that low-probability tokens of a single reference answer are mostly trivial
phrasing choices, while the semantically core tokens are predicted with high probability. Every baseline of the paper
is one more rule here, so the trainer has one code path and the `inspect` report reuses the very same function.

All rules read p = exp(log_probs) *detached*: the rule chooses and weights tokens, the gradient flows only through
log p of the kept tokens.
"""

from __future__ import annotations

import torch

# rule -> what it keeps. The order is the one the error messages and the docs list.
SELECTIONS = {
    "all": "every supervised token, weight 1 (standard SFT)",
    "profit": "tokens with p > tau (ProFit)",
    "inverse": "tokens with p <= tau (the paper's low-probability ablation)",
    "band": "tokens with tau < p <= tau_high (the paper's band ablation)",
    "dft": "every supervised token, weight p (DFT, arXiv 2508.05629)",
    "entropy": "the top_ratio fraction of supervised tokens with the highest entropy, pooled over the micro-batch",
    "random": "each supervised token with probability top_ratio (a control)",
}
# Where the two baselines that are not p thresholds come from (docs/baselines.md):
# - entropy: the entropy gate of Wang et al. 2025 ("Beyond the 80/20 Rule", arXiv 2506.01939), which keeps the top 20%
#   highest-entropy tokens of a batch in RLVR, applied here to the SFT cross-entropy. The ProFit reference code has no
#   entropy rule. The top fraction is taken over all supervised tokens of one micro-batch on one rank, sequences
#   pooled: not per sequence, and not over the accumulation window or the ranks.
# - random: the reference's `threshold_direction: random` DROPS each token with probability prob_threshold; ours KEEPS
#   each with probability top_ratio, so reference p is ours top_ratio = 1 - p. Both divide by all supervised tokens.


def validate_selection(selection: str, tau: float, tau_high: float | None, top_ratio: float) -> None:
    """Raise a ValueError that names the valid choices when a rule's parameters make no sense."""
    if selection not in SELECTIONS:
        choices = "\n".join(f"  {name!r}: {what}" for name, what in SELECTIONS.items())
        raise ValueError(f"unknown selection {selection!r}; valid choices are:\n{choices}")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"tau must be in (0, 1), got {tau}")
    if selection == "band":
        if tau_high is None or not tau < tau_high <= 1.0:
            raise ValueError(f"selection='band' needs tau < tau_high <= 1, got tau={tau}, tau_high={tau_high}")
    if selection in ("entropy", "random") and not 0.0 < top_ratio <= 1.0:
        raise ValueError(f"top_ratio must be in (0, 1] for selection={selection!r}, got {top_ratio}")


def token_weights(
    log_probs: torch.Tensor,
    label_mask: torch.Tensor,
    selection: str,
    *,
    tau: float = 0.1,
    tau_high: float | None = None,
    entropy: torch.Tensor | None = None,
    top_ratio: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-token loss weights of a selection rule: a detached float tensor shaped like `log_probs`.

    Args:
        log_probs: log-probability of each ground-truth next token, shape (batch, seq). Any value where the mask is
            False (TRL's fused head puts 0 there).
        label_mask: bool, True on supervised (completion) tokens.
        selection: one of `SELECTIONS`.
        tau, tau_high: probability thresholds (`profit`, `inverse`, `band`).
        entropy: per-token entropy of the next-token distribution; required by `entropy`.
        top_ratio: fraction of tokens kept by `entropy` (exactly, over the micro-batch's supervised tokens) and `random`
            (in expectation: each token independently).
        generator: RNG for `random`, for reproducible controls.

    Returns:
        Weights in [0, 1], exactly 0 outside `label_mask`.
    """
    validate_selection(selection, tau, tau_high, top_ratio)
    mask = label_mask.bool()
    log_p = log_probs.detach()
    # Thresholds compare p itself, not log p with log tau: the two can disagree by one rounding at p == tau.
    if selection == "all":
        keep = mask
    elif selection == "profit":
        keep = mask & (log_p.float().exp() > tau)
    elif selection == "inverse":
        keep = mask & (log_p.float().exp() <= tau)
    elif selection == "band":
        p = log_p.float().exp()
        keep = mask & (p > tau) & (p <= tau_high)
    elif selection == "dft":
        p = log_p.float().exp()
        return torch.where(mask, p, torch.zeros_like(p))
    elif selection == "entropy":
        if entropy is None:
            raise ValueError("selection='entropy' needs the per-token entropy (TRL's fused head returns it)")
        n = int(mask.sum())
        keep = torch.zeros_like(mask)
        if n > 0:
            k = max(1, round(top_ratio * n))
            scores = entropy.detach().float().masked_fill(~mask, float("-inf")).flatten()
            keep.view(-1)[scores.topk(k).indices] = True
    else:  # random
        device = log_p.device if generator is None else generator.device
        draws = torch.rand(log_p.shape, generator=generator, device=device)
        keep = mask & (draws.to(log_p.device) < top_ratio)
    return keep.float()


def protect(weights: torch.Tensor, protected: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """The rule's weights with every protected supervised token set to 1, whatever the rule gave it.

    Applied after the rule, so protected tokens do not count towards `entropy`'s or `random`'s `top_ratio`. Not part
    of the paper's method: see `ProFitConfig.protected_strings` and `keep_end_of_turn`.
    """
    keep = protected.to(weights.device).bool() & label_mask.to(weights.device).bool()
    return torch.where(keep, torch.ones_like(weights), weights)


def selection_loss(
    log_probs: torch.Tensor,
    label_mask: torch.Tensor,
    weights: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """The selected cross-entropy: -sum(w * log p) / N. The reference the tests check the trainer against.

    The trainer does not call this function: it hands the weighted log-probs to TRL's own reduction (see
    `trainer._SelectedForward`), so that TRL's DDP scaling, MoE loss and metrics stay TRL's. `tests/training/test_trainer.py`
    checks that the trainer's loss and gradients equal this function's on an independent full-logits forward pass.

    N is the number of *supervised* tokens, not of kept ones: the paper's Eq. 5 averages the masked loss over all
    target tokens, and its reference code divides by the full label count. Dropping a token therefore removes its
    term without re-scaling the others, so tau changes the update's size as well as its direction, exactly as in the
    paper. N is TRL's `num_items_in_batch` (supervised tokens over the whole gradient-accumulation window and all
    ranks), which makes accumulation and DDP give the same update as one large batch; without it, the micro-batch's
    own count. N is clamped to 1, so an all-dropped batch is a finite zero with zero gradients.
    """
    divisor = label_mask.sum() if num_items_in_batch is None else num_items_in_batch
    divisor = torch.as_tensor(divisor, device=log_probs.device).clamp(min=1)
    masked = torch.where(label_mask.bool(), log_probs, torch.zeros_like(log_probs))
    return -(weights.to(log_probs.dtype) * masked).sum() / divisor


def selection_stats(log_probs: torch.Tensor, label_mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sums behind the logged metrics, as one tensor, so a trainer can add them up on the device and gather them once.

    Returns [supervised, sum p over supervised, kept, sum p over kept, weight mass, sum w*p]; "kept" means weight > 0
    (weights are 0 outside the mask). Dropped counts are supervised - kept. One (3, N) @ (N, 2) product does all six
    sums: the metrics run every micro-batch, so they cost a handful of kernels, not one per number.
    """
    p = log_probs.detach().float().exp()
    rows = torch.stack([label_mask.float(), (weights > 0).float(), weights.float()]).flatten(1)
    cols = torch.stack([torch.ones_like(p), p]).flatten(1)
    return (rows @ cols.T).flatten()
