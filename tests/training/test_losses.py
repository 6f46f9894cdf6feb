"""The selection rules and the loss, against hand-computed values."""

import math

import pytest
import torch

from profit_rl.losses import SELECTIONS, protect, selection_loss, selection_stats, token_weights

P = torch.tensor([[0.05, 0.10, 0.30, 0.90, 0.60], [0.02, 0.15, 0.99, 0.50, 0.20]])
MASK = torch.tensor([[False, True, True, True, True], [True, True, True, True, False]])
LOGP = P.log()


def weights(selection, **kw):
    return token_weights(LOGP, MASK, selection, **kw)


def test_all_is_the_mask():
    assert torch.equal(weights("all"), MASK.float())


def test_profit_keeps_p_above_tau():
    # p > 0.1 strictly: 0.10 is dropped (the paper's rule is p > tau), masked tokens are 0 whatever p is
    expected = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=torch.float)
    assert torch.equal(weights("profit", tau=0.1), expected)
    expected_03 = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 1, 1, 0]], dtype=torch.float)
    assert torch.equal(weights("profit", tau=0.3), expected_03)


def test_inverse_is_the_complement_of_profit_on_supervised_tokens():
    expected = torch.tensor([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float)
    assert torch.equal(weights("inverse", tau=0.1), expected)
    assert torch.equal(weights("inverse", tau=0.1) + weights("profit", tau=0.1), MASK.float())


def test_band():
    expected = torch.tensor([[0, 0, 1, 0, 1], [0, 1, 0, 1, 0]], dtype=torch.float)
    assert torch.equal(weights("band", tau=0.1, tau_high=0.6), expected)


def test_dft_is_p_on_supervised_tokens():
    expected = torch.where(MASK, P, torch.zeros_like(P))
    assert torch.allclose(weights("dft"), expected)


def test_entropy_keeps_top_ratio_highest_entropy_supervised_tokens():
    entropy = torch.tensor([[9.0, 1.0, 5.0, 2.0, 3.0], [4.0, 0.5, 6.0, 0.1, 8.0]])
    # 8 supervised tokens; ratio 0.25 -> 2 tokens: entropies 6.0 and 5.0 (9.0 and 8.0 are not supervised)
    expected = torch.zeros_like(P)
    expected[1, 2] = expected[0, 2] = 1
    assert torch.equal(weights("entropy", entropy=entropy, top_ratio=0.25), expected)
    # at least one token whenever any is supervised
    assert weights("entropy", entropy=entropy, top_ratio=0.01).sum() == 1
    with pytest.raises(ValueError, match="entropy"):
        weights("entropy")


def test_random_is_seeded_and_keeps_about_top_ratio():
    logp = torch.zeros(64, 256).log_softmax(-1)  # p = 1/256 everywhere
    mask = torch.ones(64, 256, dtype=torch.bool)
    mask[:, :10] = False
    w1 = token_weights(logp, mask, "random", top_ratio=0.3, generator=torch.Generator().manual_seed(1))
    w2 = token_weights(logp, mask, "random", top_ratio=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(w1, w2)
    assert w1[:, :10].sum() == 0
    assert abs(w1[mask].mean().item() - 0.3) < 0.02


def test_weights_are_detached_and_zero_outside_mask():
    logp = LOGP.clone().requires_grad_()
    for selection in SELECTIONS:
        w = token_weights(logp, MASK, selection, tau_high=0.5, entropy=torch.rand_like(P))
        assert not w.requires_grad
        assert (w[~MASK] == 0).all()


@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_protected_tokens_keep_weight_one_under_every_rule(selection):
    # protected: p = 0.05 (unsupervised: stays 0), 0.10, 0.90 in row 0; 0.02 and 0.20 (unsupervised) in row 1
    protected = torch.tensor([[True, True, False, True, False], [True, False, False, False, True]])
    kw = dict(tau=0.1, tau_high=0.5, entropy=torch.rand_like(P), top_ratio=0.25)
    rule = token_weights(LOGP, MASK, selection, generator=torch.Generator().manual_seed(0), **kw)
    w = protect(rule, protected, MASK)
    assert (w[protected & MASK] == 1).all()
    assert (w[~MASK] == 0).all()  # protection never supervises a token
    assert torch.equal(w[~protected], rule[~protected])  # the others keep the rule's weights
    # the metrics count protected tokens as kept
    kept = selection_stats(LOGP, MASK, w)[2].item()
    assert kept == ((rule > 0) | (protected & MASK)).sum().item()
    # an empty protection changes nothing
    assert torch.equal(protect(rule, torch.zeros_like(MASK), MASK), rule)


def test_loss_normalises_by_all_supervised_tokens():
    w = weights("profit", tau=0.1)
    expected = -(LOGP * w).sum() / MASK.sum()  # Eq. 5: dropped tokens still count in the denominator
    assert torch.allclose(selection_loss(LOGP, MASK, w), expected)
    # num_items_in_batch (the accumulation window / all ranks) replaces the local count
    assert torch.allclose(selection_loss(LOGP, MASK, w, num_items_in_batch=20), -(LOGP * w).sum() / 20)


def test_dropped_tokens_get_exactly_zero_gradient():
    logp = LOGP.clone().requires_grad_()
    w = token_weights(logp, MASK, "profit", tau=0.1)
    selection_loss(logp, MASK, w).backward()
    assert (logp.grad[w == 0] == 0).all()
    assert (logp.grad[w > 0] == -1 / MASK.sum()).all()


def test_all_dropped_batch_is_finite_zero_with_zero_gradients():
    logp = torch.full((2, 3), math.log(0.01), requires_grad=True)
    mask = torch.ones(2, 3, dtype=torch.bool)
    loss = selection_loss(logp, mask, token_weights(logp, mask, "profit", tau=0.5))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(loss)
    assert (logp.grad == 0).all()
    # no supervised token at all: the divisor clamps to 1
    empty = torch.zeros(2, 3, dtype=torch.bool)
    assert selection_loss(logp, empty, token_weights(logp, empty, "all")).item() == 0


def test_tiny_tau_profit_equals_nll():
    w = token_weights(LOGP, MASK, "profit", tau=1e-9)
    assert torch.allclose(selection_loss(LOGP, MASK, w), -(LOGP * MASK).sum() / MASK.sum())


def test_stats():
    w = weights("profit", tau=0.1)
    supervised, p_supervised, kept, p_kept, mass, wp = selection_stats(LOGP, MASK, w).tolist()
    assert (supervised, kept, mass) == (8, 6, 6)
    assert p_kept == pytest.approx(0.30 + 0.90 + 0.60 + 0.15 + 0.99 + 0.50, rel=1e-5)
    assert p_supervised - p_kept == pytest.approx(0.10 + 0.02, rel=1e-5)  # the dropped tokens' p
    assert wp == pytest.approx(p_kept, rel=1e-5)
    d = token_weights(LOGP, MASK, "dft")
    assert selection_stats(LOGP, MASK, d)[4].item() == pytest.approx(p_supervised, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(selection="profitt"), "valid choices"),
        (dict(selection="profit", tau=0.0), r"tau must be in \(0, 1\)"),
        (dict(selection="profit", tau=1.5), r"tau must be in \(0, 1\)"),
        (dict(selection="band", tau=0.3, tau_high=0.2), "tau_high"),
        (dict(selection="band", tau=0.3), "tau_high"),
        (dict(selection="random", top_ratio=0.0), "top_ratio"),
    ],
)
def test_bad_parameters_fail_with_the_valid_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        token_weights(LOGP, MASK, **kwargs)
