"""ProFitSFTTrainer on a tiny Qwen3: equivalences with TRL, accumulation, LoRA, packing, resume, config errors."""

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from profit_rl import ProFitConfig, ProFitSFTTrainer

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
