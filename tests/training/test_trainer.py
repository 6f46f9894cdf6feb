"""ProFitSFTTrainer on a tiny Qwen3: equivalences with TRL, accumulation, LoRA, packing, resume, config errors."""

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from profit_rl import ProFitConfig, ProFitSFTTrainer
from profit_rl.losses import SELECTIONS, protect, selection_loss, token_weights

# Randomly initialised tiny model: p ~ 1/vocab = 0.002 with spread, so this tau keeps roughly half the tokens.
MIXED_TAU = 0.002


def sft_rows(n=16):
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": f"What is {i} plus {i + 3}?"}],
                "completion": [{"role": "assistant", "content": f"So {i} + {i + 3} = {2 * i + 3}. \\boxed{{{2 * i + 3}}}"}],
            }
            for i in range(n)
        ]
    )


def config(tmp_path, cls=ProFitConfig, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        bf16=False,
        report_to=[],
        max_length=64,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        optim="sgd",  # plain SGD: the update is -lr * grad, so any normalisation error shows in the weights
        learning_rate=1.0,
        lr_scheduler_type="constant",
        max_steps=1,
    )
    kwargs.update(overrides)
    return cls(**kwargs)


def first_batch_loss_and_grads(trainer):
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=1e-5, msg=name)


def test_tiny_tau_profit_equals_trl_nll(tiny_model_dir, tmp_path):
    ours = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, tau=1e-9), train_dataset=sft_rows())
    trl = SFTTrainer(str(tiny_model_dir), args=config(tmp_path, SFTConfig, loss_type="nll"), train_dataset=sft_rows())
    loss_ours, grads_ours = first_batch_loss_and_grads(ours)
    loss_trl, grads_trl = first_batch_loss_and_grads(trl)
    torch.testing.assert_close(loss_ours, loss_trl)
    assert_same(grads_ours, grads_trl)


def test_dft_selection_equals_trl_dft(tiny_model_dir, tmp_path):
    ours = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, selection="dft"), train_dataset=sft_rows())
    trl = SFTTrainer(str(tiny_model_dir), args=config(tmp_path, SFTConfig, loss_type="dft"), train_dataset=sft_rows())
    loss_ours, grads_ours = first_batch_loss_and_grads(ours)
    loss_trl, grads_trl = first_batch_loss_and_grads(trl)
    torch.testing.assert_close(loss_ours, loss_trl)
    assert_same(grads_ours, grads_trl)


def test_profit_drops_tokens_and_differs_from_nll(tiny_model_dir, tmp_path):
    ours = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, tau=MIXED_TAU), train_dataset=sft_rows())
    trl = SFTTrainer(str(tiny_model_dir), args=config(tmp_path, SFTConfig), train_dataset=sft_rows())
    loss_ours, _ = first_batch_loss_and_grads(ours)
    loss_trl, _ = first_batch_loss_and_grads(trl)
    sums = ours._selection_sums["train"]  # selection_stats summed since the last log: [supervised, _, kept, ...]
    kept = (sums[2] / sums[0]).item()
    assert 0.1 < kept < 0.9
    # dropped tokens are low-p tokens, i.e. the largest -log p terms: the selected loss is below kept * nll
    assert 0 < loss_ours < kept * loss_trl


def test_grad_accumulation_equals_larger_batch(tiny_model_dir, tmp_path):
    runs = {}
    for name, bs, accum in (("batch4", 4, 1), ("accum2x2", 2, 2)):
        trainer = ProFitSFTTrainer(
            str(tiny_model_dir),
            args=config(tmp_path / name, tau=MIXED_TAU, per_device_train_batch_size=bs, gradient_accumulation_steps=accum),
            train_dataset=sft_rows(),
        )
        trainer.train()
        runs[name] = params(trainer.model)
        # the update really happened, and not all tokens were kept
        assert 0 < trainer.state.log_history[0]["profit/kept_fraction"] < 1
    initial = params(ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path), train_dataset=sft_rows()).model)
    assert any((runs["batch4"][n] - initial[n]).abs().max() > 1e-4 for n in initial)
    assert_same(runs["batch4"], runs["accum2x2"], atol=1e-5)


def test_metrics_are_logged(tiny_model_dir, tmp_path):
    trainer = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(tmp_path, selection="all", max_steps=2, learning_rate=1e-3), train_dataset=sft_rows()
    )
    trainer.train()
    logs = trainer.state.log_history[0]
    assert logs["profit/kept_fraction"] == 1.0 and logs["profit/weight_mass"] == 1.0
    assert logs["profit/p_dropped_mean"] == 0.0 and 0 < logs["profit/p_kept_mean"] < 1
    assert "entropy" in logs and "mean_token_accuracy" in logs  # TRL's own metrics are still there


def test_lora_trains_only_the_adapter(tiny_model_dir, tmp_path):
    from peft import LoraConfig

    trainer = ProFitSFTTrainer(
        str(tiny_model_dir),
        args=config(tmp_path, tau=MIXED_TAU, max_steps=2, learning_rate=1e-2),
        train_dataset=sft_rows(),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    before = params(trainer.model)
    trainer.train()
    after = params(trainer.model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all("lora_" in n for n in changed)
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()


def test_packing(tiny_model_dir, tmp_path):
    trainer = ProFitSFTTrainer(
        str(tiny_model_dir),
        args=config(tmp_path, tau=MIXED_TAU, packing=True, max_length=128, max_steps=2, learning_rate=1e-3),
        train_dataset=sft_rows(),
    )
    trainer.train()
    logs = trainer.state.log_history[0]
    assert torch.isfinite(torch.tensor(logs["loss"])) and 0 < logs["profit/kept_fraction"] < 1


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_checkpoint_save_and_resume_gives_the_same_model(tiny_model_dir, tmp_path):
    common = dict(tau=MIXED_TAU, max_steps=4, learning_rate=1e-2, lr_scheduler_type="linear", optim="adamw_torch")
    straight = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path / "a", **common), train_dataset=sft_rows())
    straight.train()

    run_dir = tmp_path / "b"
    interrupted = ProFitSFTTrainer(
        str(tiny_model_dir),
        args=config(run_dir, save_strategy="steps", save_steps=2, **common),
        train_dataset=sft_rows(),
        callbacks=[StopAt(2)],
    )
    interrupted.train()
    assert (run_dir / "out" / "checkpoint-2").is_dir()
    resumed = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(run_dir, save_strategy="steps", save_steps=2, **common), train_dataset=sft_rows()
    )
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 4
    assert_same(params(straight.model), params(resumed.model), atol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(selection="bogus"), "(?s)valid choices are:.*'profit'"),
        (dict(tau=0.0), r"tau must be in \(0, 1\)"),
        (dict(tau=1.0), r"tau must be in \(0, 1\)"),
        (dict(selection="band", tau=0.5, tau_high=0.5), "tau_high"),
        (dict(loss_type="dft"), "selection='dft'"),
    ],
)
def test_config_errors(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_end_of_turn_is_kept_on_request_and_its_loss_is_warned_about(tiny_model_dir, tmp_path):
    # tau 0.5 drops every token of a random model, the end-of-turn one included
    warn_run = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path / "a", tau=0.5), train_dataset=sft_rows())
    with pytest.warns(UserWarning, match="will not learn to stop"):
        first_batch_loss_and_grads(warn_run)
    assert warn_run._selection_sums["train"][2] == 0  # nothing kept

    keep_run = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(tmp_path / "b", tau=0.5, keep_end_of_turn=True), train_dataset=sft_rows()
    )
    batch = keep_run._prepare_inputs(next(iter(keep_run.get_train_dataloader())))
    end_id = keep_run.processing_class.convert_tokens_to_ids("<|im_end|>")
    n_end = int(((batch["labels"][:, 1:] == end_id)).sum())
    assert n_end == 4  # one per completion of the batch
    keep_run.model.train()
    loss = keep_run.compute_loss(keep_run.model, batch)
    assert keep_run._selection_sums["train"][2] == n_end and loss > 0  # exactly the end-of-turn tokens are trained


# ------------------------------------------------------------------------------------- against the reference loss


def boxed_tokens(trainer, next_tokens):
    """Where the scored labels are the tokens of "\\boxed": in these rows " \\" then "boxed" (the tiny tokenizer)."""
    tok = trainer.processing_class
    backslash, boxed = tok.convert_tokens_to_ids(tok.tokenize(" \\boxed"))
    first = (next_tokens[:, :-1] == backslash) & (next_tokens[:, 1:] == boxed)
    mask = torch.zeros_like(next_tokens, dtype=torch.bool)
    mask[:, :-1] |= first
    mask[:, 1:] |= first
    return mask


def full_logits_log_probs(model, batch):
    """Independent of TRL's fused head: log-softmax of the full logits, gathered at the next-token labels."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    log_probs = logits.float().log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return torch.where(mask, log_probs, torch.zeros_like(log_probs)), mask, labels


@pytest.mark.parametrize("protected", [False, True])
def test_trainer_loss_and_gradients_equal_the_reference_selection_loss(tiny_model_dir, tmp_path, protected):
    extra = dict(protected_strings=["\\boxed"], keep_end_of_turn=True) if protected else {}
    trainer = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(tmp_path, tau=MIXED_TAU, **extra), train_dataset=sft_rows()
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    params_ = [p for p in trainer.model.parameters() if p.requires_grad]
    loss = trainer.compute_loss(trainer.model, dict(batch))
    grads = torch.autograd.grad(loss, params_)

    log_probs, mask, labels = full_logits_log_probs(trainer.model, batch)
    weights = token_weights(log_probs, mask, "profit", tau=MIXED_TAU)
    if protected:
        end = labels == trainer.processing_class.convert_tokens_to_ids("<|im_end|>")
        keep = boxed_tokens(trainer, labels) | end
        assert keep.sum() == 3 * 4 and (weights[keep] == 0).any()  # protection changes this batch's selection
        weights = protect(weights, keep, mask)
    reference = selection_loss(log_probs, mask, weights)
    reference_grads = torch.autograd.grad(reference, params_)
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=1e-5)
    for ours, theirs in zip(grads, reference_grads):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------- protected strings


def test_protected_tokens_keep_weight_one_under_every_rule_and_count_as_kept(tiny_model_dir, tmp_path):
    # tau 0.5 makes the p rules drop every token of a random model: only protection keeps anything
    trainer = ProFitSFTTrainer(
        str(tiny_model_dir), args=config(tmp_path, tau=0.5, protected_strings=["\\boxed"]), train_dataset=sft_rows()
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    protected = boxed_tokens(trainer, batch["labels"][:, 1:])
    assert protected.sum() == 2 * 4  # " \\" and "boxed" in each of the 4 rows
    recorded = []
    selection_weights = trainer.selection_weights
    trainer.selection_weights = lambda *a, **k: recorded.append(selection_weights(*a, **k)) or recorded[-1]
    trainer.model.train()
    for rule in SELECTIONS:
        trainer.args.selection, trainer.args.tau_high = rule, 0.9
        with torch.no_grad():
            trainer.compute_loss(trainer.model, dict(batch))
        weights = recorded[-1]
        assert (weights[protected] == 1).all(), rule
        logs = {}
        trainer.log(logs)
        supervised = (batch["labels"][:, 1:] != -100).sum().item()
        assert logs["profit/kept_fraction"] == pytest.approx((weights > 0).sum().item() / supervised), rule
        if rule in ("profit", "band"):  # nothing but the protected tokens is kept
            assert logs["profit/kept_fraction"] == pytest.approx(protected.sum().item() / supervised)
            assert logs["profit/p_kept_mean"] > 0


def test_an_empty_protection_changes_nothing(tiny_model_dir, tmp_path):
    runs = {}
    options = {"none": {}, "empty": dict(protected_strings=[]), "absent": dict(protected_strings=["zq"])}
    for name, extra in options.items():
        trainer = ProFitSFTTrainer(
            str(tiny_model_dir), args=config(tmp_path / name, tau=MIXED_TAU, **extra), train_dataset=sft_rows()
        )
        runs[name] = first_batch_loss_and_grads(trainer)
    loss, grads = runs["none"]
    for name in ("empty", "absent"):
        assert torch.equal(runs[name][0], loss), name
        assert grads.keys() == runs[name][1].keys() and all(torch.equal(grads[k], runs[name][1][k]) for k in grads)


def test_protected_strings_errors(tmp_path):
    with pytest.raises(ValueError, match=r"protected_strings\[0\]"):
        config(tmp_path, protected_strings=[""])


def test_eval_loss_has_the_training_loss_normaliser(tiny_model_dir, tmp_path):
    """The eval loss is the selected loss divided by ALL supervised tokens of the eval batch, as in training (not by
    the kept ones, and not the unselected NLL)."""
    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, tau=MIXED_TAU, per_device_eval_batch_size=8),
                               train_dataset=sft_rows(), eval_dataset=sft_rows(8))
    eval_loss = trainer.evaluate()["eval_loss"]
    batch = trainer._prepare_inputs(next(iter(trainer.get_eval_dataloader())))  # the whole eval set: one batch
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    log_p = logits[:, :-1].float().log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    kept = mask & (log_p.exp() > MIXED_TAU)
    selected = -(log_p * kept).sum()
    assert 0 < kept.sum() < mask.sum()
    assert eval_loss == pytest.approx((selected / mask.sum()).item(), rel=1e-4)
    assert eval_loss != pytest.approx((selected / kept.sum()).item(), rel=1e-2)
